//! The models against the Graph v1.0 schema extract in `tests/schema/`
//! (see its README): every schema property of every covered type is a
//! declared field and no declared field is missing from the schema (except
//! the documented extras below); every enum member reads as itself and is
//! written back unchanged; every action body has exactly the schema's
//! parameters, and the non-nullable ones are required.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod actions;
mod builders;
mod entities;
mod enums;
mod loading;
mod models;
mod polymorphic;
