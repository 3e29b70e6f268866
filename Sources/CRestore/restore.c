#include "restore.h"
