pub(crate) mod context;
