"""One module per `neurosim` subcommand; each registers itself with `neurosim.cli.command`."""
