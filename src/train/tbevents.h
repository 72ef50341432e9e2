/* TensorBoard scalars written directly: TFRecord records of tensorflow.Event protos. */
#ifndef DPT_TRAIN_TBEVENTS_H
#define DPT_TRAIN_TBEVENTS_H

#include <stddef.h>
#include <stdint.h>

typedef struct tb_writer tb_writer;
/* Creates DIR/events.out.tfevents.<unix seconds>.<hostname> and writes the file_version event
 * ("brain.Event:2"). Returns NULL with dpt_error() set when the file cannot be created. */
tb_writer *tb_open(const char *dir);
/* One scalar summary event: Event{wall_time, step, summary{value{tag, simple_value}}}. */
void tb_scalar(tb_writer *w, const char *tag, int64_t step, double wall_time, float value);
void tb_flush(tb_writer *w);
void tb_close(tb_writer *w); /* NULL is fine */
/* CRC-32C (Castagnoli), exposed for the unit test. */
uint32_t tb_crc32c(const void *data, size_t n);

#endif
