#include "trace/trace-target_i386_mktme.h"
