//! placeholder
pub struct SynthConfig;
pub struct Synth;
pub fn generate() {}
pub fn generate_dense() {}
