"""The `cancel-handler` command-line tool (click). Only this package imports click."""
