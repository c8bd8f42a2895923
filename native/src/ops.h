// The op table: every op the addon offers, its fixed arity and tail group, and the enums
// whose codes appear in arguments. The addon exports both (addon.cc); src/engine/native.ts
// checks them at load against what it was written for, so TS never mirrors a code by hand.
#pragma once

#include "common.h"
#include "gemm.h"

namespace mp {

enum BinaryOp { BIN_ADD, BIN_SUB, BIN_MUL, BIN_DIV, BIN_COUNT };
// How b (or a) is broadcast against the n-element output: the same shape, one row of C
// values repeated down the last axis, or one scalar.
enum Broadcast { BC_SAME, BC_B_ROW, BC_A_ROW, BC_B_SCALAR, BC_A_SCALAR, BC_COUNT };
enum UnaryOp { UN_EXP, UN_ERF, UN_RELU_GRAD, UN_GELU, UN_GELU_GRAD, UN_COUNT };
// Adam's weight decay: none, L2 (added to the gradient), decoupled (AdamW).
enum AdamMode { ADAM_PLAIN, ADAM_L2, ADAM_DECOUPLED, ADAM_COUNT };

struct EnumDef {
  const char* name;
  const char* const* members;
  int count;
};

struct OpDef {
  const char* name;
  int arity;  // fixed arguments
  int group;  // tail entries come in groups of this size; 0: no tail
  OpFn fn;
};

extern const OpDef OPS[];
extern const int OP_COUNT;
extern const EnumDef ENUMS[];
extern const int ENUM_COUNT;

// gemm.cc
void op_matmul(const Call& c);
void op_linear(const Call& c);
// conv.cc
void op_conv2d(const Call& c);
void op_conv2d_grad_input(const Call& c);
void op_conv2d_grad_filter(const Call& c);
// elementwise.cc
void op_binary(const Call& c);
void op_unary(const Call& c);
void op_heads(const Call& c);
// norms.cc
void op_col_reduce(const Call& c);
void op_bn_reduce(const Call& c);
void op_batch_norm(const Call& c);
void op_bn_relu(const Call& c);
void op_conv2d_bn(const Call& c);
void op_bn_train(const Call& c);
void op_bn_train_grad(const Call& c);
void op_bn_relu_train(const Call& c);
void op_bn_relu_train_grad(const Call& c);
void op_layer_norm(const Call& c);
void op_layer_norm_grad(const Call& c);
// pooling.cc
void op_max_pool_grad(const Call& c);
// optimizer.cc
void op_adam(const Call& c);

}  // namespace mp
