/* The owner tag of src/util/mutex.h's lock checks. */
#include "src/util/mutex.h"

/* One per thread; only its address matters. A thread's tag outlives every
 * lock the thread holds, so no tmutex records a dead thread's tag while held. */
static _Thread_local char tmutex_tag;

const void *tmutex_self(void) { return &tmutex_tag; }
