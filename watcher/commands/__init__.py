"""Subcommands that live in their own modules (listed in ``watcher.cli.COMMAND_MODULES``)."""
