/* Command-line front end: argument parsing only. */
#ifndef DPT_CLI_H
#define DPT_CLI_H

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_prep(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_bench_allreduce(int argc, char **argv);
int cmd_data(int argc, char **argv);

#endif
