pub(crate) mod context;
#[allow(dead_code)] // wired into the job runner later
pub(crate) mod interactions;
#[allow(dead_code)]
pub(crate) mod mf;
