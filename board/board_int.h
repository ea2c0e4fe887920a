/* board internals shared by the board/ sources (not a public header: use board/board.h). */
#ifndef CORRIDOR_BOARD_INT_H
#define CORRIDOR_BOARD_INT_H

#include "board/board.h"

/* GPIO lines behind one interface, two backends: libgpiod (character device) and the
 * recording backend. Lines are requested once at open and held for the process lifetime, so
 * nothing else can flip a modem's power line under us. Thread-safe (one short mutex). */
struct gpio;
/* record NULL = libgpiod; "-" = record into memory; else append records to that file. */
int gpio_open(const char *record, struct gpio **out, char *err, size_t errlen);
void gpio_close(struct gpio *g);
/* Request `l` as an output at the logical value `asserted`; *handle names it afterwards.
 * label ("slot1.power") appears in the kernel's consumer field and in the recording. */
int gpio_request(struct gpio *g, const struct board_line *l, const char *label, bool asserted,
                 int *handle, char *err, size_t errlen);
int gpio_set(struct gpio *g, int handle, bool asserted, char *err, size_t errlen);
size_t gpio_record_text(struct gpio *g, char *buf, size_t n);

#endif
