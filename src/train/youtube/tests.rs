//! Tests of the youtube job.
