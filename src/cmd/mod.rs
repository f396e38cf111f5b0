//! One module per subcommand: its arguments and a `run` function.

pub mod serve;
