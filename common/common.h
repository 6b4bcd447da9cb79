/*
 * The common module: what every other module uses. Its contract is split
 * over the headers included here, one per concern.
 */
#ifndef MLBOOT_COMMON_COMMON_H
#define MLBOOT_COMMON_COMMON_H

#include "buf.h"
#include "doc.h"
#include "error.h"
#include "file.h"
#include "hash.h"
#include "log.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
