//! Documents kycdesk issues about a case: the report PDF (and, with the
//! integrator API, the certified zip).

pub mod report;
