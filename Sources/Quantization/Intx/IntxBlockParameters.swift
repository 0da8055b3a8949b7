/// Intx blocks' scales and zero points, by torchao's `choose_qparams_affine` (SPEC §1.4), a row of
/// blocks at a time: one loop over the blocks with no branch or call left in it, so that it
/// vectorises. (Block by block, a group of 32 spent more on its divisions than on its codes.)
enum IntxBlockParameters {
  /// For each of `count` blocks with extrema `minima[i]` and `maxima[i]`, its scale in the input
  /// `format` (before any cast to a different scale format) into `scales[i]`, and its zero point,
  /// an integer in `[qmin, qmax]` (0 for the symmetric mappings), into `zeroPoints[i]`.
  ///
  /// When either extremum is NaN the scale is NaN and the zero point 0: torch's `amin`/`amax`,
  /// `min`, `max` and `clamp` all keep a NaN, and the NaN zero point becomes 0 in the cast to int8.
  static func compute(
    minima: UnsafePointer<Float>, maxima: UnsafePointer<Float>, count: Int, qmin: Float, qmax: Float,
    mapping: IntxMapping, format: FloatFormat, scales: UnsafeMutablePointer<Float>,
    zeroPoints: UnsafeMutablePointer<Float>
  ) {
    let blocks = Blocks(
      minima: minima, maxima: maxima, count: count, eps: format.smallestNormal, scales: scales, zeroPoints: zeroPoints)
    switch format {
    case .bf16: compute(BFloat16Rounding.self, blocks, qmin, qmax, mapping)
    case .fp16: compute(Float16Rounding.self, blocks, qmin, qmax, mapping)
    case .fp32: compute(Float32Rounding.self, blocks, qmin, qmax, mapping)
    }
  }

  private struct Blocks {
    let minima: UnsafePointer<Float>
    let maxima: UnsafePointer<Float>
    let count: Int
    let eps: Float
    let scales: UnsafeMutablePointer<Float>
    let zeroPoints: UnsafeMutablePointer<Float>
  }

  @inline(__always)
  private static func compute<R: FormatRounding>(
    _: R.Type, _ blocks: Blocks, _ qmin: Float, _ qmax: Float, _ mapping: IntxMapping
  ) {
    switch mapping {
    case .symmetric:
      let divisor = (qmax - qmin) / 2
      forEach(blocks) { negative, positive in
        R.round((-negative > positive ? -negative : positive) / divisor)
      } zeroPoint: { _, _ in
        0
      }
    case .symmetricNoClippingError:
      forEach(blocks) { negative, positive in
        let fromMinimum = R.round(negative / qmin)
        let fromMaximum = R.round(positive / qmax)
        return fromMinimum > fromMaximum ? fromMinimum : fromMaximum
      } zeroPoint: { _, _ in
        0
      }
    case .asymmetric:
      let levels = qmax - qmin
      forEach(blocks) { negative, positive in
        R.round(R.round(positive - negative) / levels)
      } zeroPoint: { negative, scale in
        // |negative ⊘ scale| is at most about qmax − qmin (the scale is at least the range over
        // it, or 0 ⊘ ∞), far inside `rint`'s exact range.
        let shift = IntegerRounding.rint(R.round(negative / scale))
        return IntegerRounding.clamp(R.round(qmin - shift), qmin, qmax)
      }
    }
  }

  /// Runs the loop: `scale(negative, positive)` gives a block's scale from its range widened to
  /// hold zero, before the eps; `zeroPoint(negative, scale)` its zero point.
  @inline(__always)
  private static func forEach(
    _ blocks: Blocks, scale: (_ negative: Float, _ positive: Float) -> Float,
    zeroPoint: (_ negative: Float, _ scale: Float) -> Float
  ) {
    for index in 0..<blocks.count {
      let (minimum, maximum) = (blocks.minima[index], blocks.maxima[index])
      let isNaN = !(minimum == minimum && maximum == maximum)
      // Zero is always inside the range.
      let negative = minimum < 0 ? minimum : 0
      let positive = maximum > 0 ? maximum : 0
      var blockScale = scale(negative, positive)
      // torch.clamp(min: eps) keeps NaN.
      blockScale = blockScale < blocks.eps ? blocks.eps : blockScale
      blocks.scales[index] = isNaN ? .nan : blockScale
      let blockZeroPoint = zeroPoint(negative, blockScale)
      blocks.zeroPoints[index] = isNaN ? 0 : blockZeroPoint
    }
  }
}
