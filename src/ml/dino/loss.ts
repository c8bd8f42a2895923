// DINOLoss and the two moving averages of DINO (main_dino.py), over tfjs tensors.
import * as tf from '@tensorflow/tfjs';
import type { ParamMap } from '../models/params.js';

/** The teacher's targets: softmax((t - center) / temp), as constants (no gradient path). */
export function teacherTargets(teacherOut: tf.Tensor2D, center: tf.Tensor, temp: number): tf.Tensor2D {
  return tf.tidy(() => tf.softmax(tf.div(tf.sub(teacherOut, center), temp)) as tf.Tensor2D);
}

/**
 * Cross-entropy between each global crop's targets and every other crop's student output,
 * averaged over samples and then over the pairs (same-view pairs skipped). `studentOut` holds
 * `crops` chunks of m rows (crop-major), `targets` the two global chunks.
 */
export function dinoLoss(studentOut: tf.Tensor2D, targets: tf.Tensor2D, crops: number, studentTemp: number): tf.Scalar {
  return tf.tidy(() => {
    const logp = tf.split(tf.logSoftmax(tf.div(studentOut, studentTemp)), crops, 0);
    const q = tf.split(targets, 2, 0);
    const terms: tf.Tensor[] = [];
    for (let iq = 0; iq < q.length; iq++)
      for (let v = 0; v < crops; v++) {
        if (v === iq) continue;
        terms.push(tf.mean(tf.sum(tf.mul(tf.neg(q[iq]!), logp[v]!), -1)));
      }
    return tf.div(tf.addN(terms), terms.length) as tf.Scalar;
  });
}

/** center * m + mean(teacher outputs) * (1 - m), the mean over the whole batch's global crops. */
export function updatedCenter(center: tf.Tensor, teacherSum: tf.Tensor, rows: number, momentum: number): tf.Tensor {
  return tf.tidy(() => tf.add(tf.mul(center, momentum), tf.mul(tf.div(teacherSum, rows), 1 - momentum)));
}

/** teacher = teacher * m + (1 - m) * student for every parameter (not buffers: BatchNorm
 *  running statistics stay the teacher's own, as DINO's zip over .parameters()). */
export function emaUpdate(teacher: ParamMap, student: ParamMap, names: readonly string[], momentum: number): void {
  for (const name of names) {
    const t = teacher.get(name);
    const s = student.get(name);
    if (!t || !s) throw new Error(`EMA: parameter ${name} is missing from the ${t ? 'student' : 'teacher'}`);
    tf.tidy(() => t.assign(tf.add(tf.mul(t, momentum), tf.mul(s, 1 - momentum))));
  }
}
