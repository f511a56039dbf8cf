//! HTTP handlers, one module per resource. Handlers only extract, call and map.

pub mod appeals;
pub mod audit;
pub mod auth;
pub mod constitution;
pub mod decisions;
pub mod entities;
pub mod governance;
pub mod system;
pub mod transfers;
pub mod verify;
