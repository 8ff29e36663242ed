"""The steps of one capture, each in a module of its own; :mod:`watcher.pipeline` runs them."""
