#!/bin/sh
# Regenerates Sources/CONNX from schemas/onnx.proto with protoc-c (Debian: protobuf-c-compiler).
# The header goes to include/ so SwiftPM exposes it as the CONNX module's public header.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

protoc-c --proto_path="$root/schemas" --c_out="$work" "$root/schemas/onnx.proto"

mkdir -p "$root/Sources/CONNX/include"
mv "$work/onnx.pb-c.h" "$root/Sources/CONNX/include/onnx.pb-c.h"
# The .c file includes "onnx.pb-c.h"; SwiftPM puts include/ on the target's header path.
mv "$work/onnx.pb-c.c" "$root/Sources/CONNX/onnx.pb-c.c"
echo "generated Sources/CONNX/onnx.pb-c.c and Sources/CONNX/include/onnx.pb-c.h"
