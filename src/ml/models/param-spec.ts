// Parameter descriptions that need no tensor library: what parameters a model has, their
// PyTorch names and shapes, and how each is initialised. Planning code, `pipeline models`
// and the weight mapper use these without loading tfjs.
//
// Layout choice: every name and `shape` here is the PyTorch state_dict's (conv OIHW, linear
// [out, in]), so files are interchangeable with torchvision/timm. In memory the tfjs
// variables hold tfjs-native layouts (conv HWIO, linear [in, out]); the conversion happens
// once, when variables are made from a state dict or read back (see ../weights/layout.ts).

/** How a tensor is laid out in PyTorch, which decides its conversion to tfjs. */
export type Layout = 'conv' | 'linear' | 'plain';

/** How a fresh tensor is filled (torchvision / timm rules, see init.ts). */
export type InitRule =
  | { kind: 'kaimingNormalFanOut' } // torchvision convs: N(0, 2 / fan_out)
  | { kind: 'torchDefaultWeight' } // nn.Linear/Conv2d default: U(-1/sqrt(fan_in), +)
  | { kind: 'torchDefaultBias'; fanIn: number } // their bias: U(-1/sqrt(fan_in), +)
  | { kind: 'truncNormal'; std: number } // timm/torchvision trunc_normal_(std), cut at [-2, 2]
  | { kind: 'normal'; std: number }
  | { kind: 'constant'; value: number };

export interface ParamSpec {
  /** The PyTorch state_dict key, e.g. `layer1.0.conv1.weight`. */
  name: string;
  /** PyTorch shape. */
  shape: number[];
  layout: Layout;
  init: InitRule;
  /** Buffers (BatchNorm running stats) are state, not trained by the optimiser. */
  trainable: boolean;
  /** torch stores num_batches_tracked as int64; everything else is float32. */
  dtype: 'F32' | 'I64';
  /** Part of the classifier head, replaced per task (the family's `classifier` prefix). */
  head: boolean;
}

/** What a family's parameter list gives: `head` follows from the family's classifier name. */
export type FamilyParam = Omit<ParamSpec, 'head'>;

/** One tensor's values in PyTorch layout (a state dict entry). */
export interface StateTensor {
  shape: number[];
  data: Float32Array;
}

/** The per-task fields every model config carries. */
export interface TaskConfig {
  numClasses: number;
  channels: number;
  imageSize: number;
}

/** Per-task options every model takes. */
export interface TaskOptions {
  /** Classes of the head; 1 means one logit (binary, sigmoid). */
  numClasses?: number;
  channels?: number;
  imageSize?: number;
  /** ResNet only: torchvision's zero_init_residual. */
  zeroInitResidual?: boolean;
}
