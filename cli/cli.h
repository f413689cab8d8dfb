/*
 * cli: the `ovstore` binary's subcommands.  Each takes argv starting at its
 * own name and returns the process exit status.  Bad input: one line on
 * stderr (log_error), exit status 1; failures of the product: 1 as well,
 * with the reason.
 */
#pragma once

int cmd_domain(int argc, char **argv);
int cmd_mount(int argc, char **argv);
int cmd_status(int argc, char **argv);
