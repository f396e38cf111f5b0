//! One module per subcommand: its arguments and a `run` function.

pub mod backup;
pub mod completions;
pub mod delete;
pub mod gc;
pub mod images;
pub mod login;
pub mod logout;
pub mod migrate;
pub mod restore;
pub mod retention;
pub mod serve;
pub mod tag;
pub mod token;
