//! Tests of the wide-deep job.
