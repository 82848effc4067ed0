/*
 * ambitious.h - the whole public API of ambitious, one include.
 * Each layer has its own header under ambitious/ (DESIGN §1).
 */
#ifndef AMBITIOUS_H
#define AMBITIOUS_H

#include "ambitious/core.h"
#include "ambitious/term.h"
#include "ambitious/etf.h"
#include "ambitious/process.h"
#include "ambitious/logger.h"
#include "ambitious/gen_server.h"
#include "ambitious/supervisor.h"
#include "ambitious/application.h"
#include "ambitious/socket.h"

#endif /* AMBITIOUS_H */
