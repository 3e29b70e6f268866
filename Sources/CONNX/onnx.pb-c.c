#include "onnx.pb-c.h"
