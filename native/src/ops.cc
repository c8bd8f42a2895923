// The op table (see ops.h). Codes are positions in these arrays.
#include "ops.h"

namespace mp {

const OpDef OPS[] = {
    {"conv2d", 20, 0, op_conv2d},
    {"conv2dGradInput", 18, 0, op_conv2d_grad_input},
    {"conv2dGradFilter", 18, 0, op_conv2d_grad_filter},
    {"matmul", 5, 3, op_matmul},
    {"binary", 7, 0, op_binary},
    {"unary", 5, 0, op_unary},
    {"colReduce", 5, 0, op_col_reduce},
    {"bnReduce", 6, 0, op_bn_reduce},
    {"batchNorm", 9, 0, op_batch_norm},
    {"bnRelu", 10, 0, op_bn_relu},
    {"bnTrain", 9, 0, op_bn_train},
    {"bnTrainGrad", 11, 0, op_bn_train_grad},
    {"bnReluTrain", 10, 0, op_bn_relu_train},
    {"bnReluTrainGrad", 14, 0, op_bn_relu_train_grad},
    {"layerNorm", 9, 0, op_layer_norm},
    {"layerNormGrad", 10, 0, op_layer_norm_grad},
    {"maxPoolGrad", 17, 0, op_max_pool_grad},
    {"adam", 9, 6, op_adam},
    {"conv2dBn", 25, 0, op_conv2d_bn},
    {"heads", 10, 0, op_heads},
    {"linear", 7, 0, op_linear},
};
const int OP_COUNT = sizeof(OPS) / sizeof(OPS[0]);

namespace {
const char* const BINARY[] = {"add", "sub", "mul", "div"};
const char* const BROADCAST[] = {"same", "bRow", "aRow", "bScalar", "aScalar"};
const char* const UNARY[] = {"exp", "erf", "reluGrad", "gelu", "geluGrad"};
const char* const ACTIVATION[] = {"none", "relu"};
const char* const ADAM[] = {"plain", "l2", "decoupled"};
const char* const PRECISION[] = {"fp32", "bf16"};
static_assert(sizeof(BINARY) / sizeof(BINARY[0]) == BIN_COUNT, "binary names");
static_assert(sizeof(BROADCAST) / sizeof(BROADCAST[0]) == BC_COUNT, "broadcast names");
static_assert(sizeof(UNARY) / sizeof(UNARY[0]) == UN_COUNT, "unary names");
static_assert(sizeof(ACTIVATION) / sizeof(ACTIVATION[0]) == ACT_COUNT, "activation names");
static_assert(sizeof(ADAM) / sizeof(ADAM[0]) == ADAM_COUNT, "adam names");
static_assert(sizeof(PRECISION) / sizeof(PRECISION[0]) == PREC_COUNT, "precision names");
}  // namespace

const EnumDef ENUMS[] = {
    {"binary", BINARY, BIN_COUNT},
    {"broadcast", BROADCAST, BC_COUNT},
    {"unary", UNARY, UN_COUNT},
    {"activation", ACTIVATION, ACT_COUNT},
    {"adamMode", ADAM, ADAM_COUNT},
    {"precision", PRECISION, PREC_COUNT},
};
const int ENUM_COUNT = sizeof(ENUMS) / sizeof(ENUMS[0]);

}  // namespace mp
