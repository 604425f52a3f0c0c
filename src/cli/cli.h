/*
 * cli: the `ballast` command. main.c dispatches to one function per
 * subcommand; each returns the process exit code.
 */
#ifndef BL_CLI_H
#define BL_CLI_H

int bl_cli_serve(int argc, char **argv);
int bl_cli_check_config(int argc, char **argv);
int bl_cli_run(int argc, char **argv);
int bl_cli_models(int argc, char **argv);
int bl_cli_bench_engine(int argc, char **argv);

#endif
