/// One intx block's scale and zero point, by torchao's `choose_qparams_affine` (SPEC §1.4).
struct IntxBlockParameters {
  /// The scale in the input format (before any cast to a different scale format).
  let scale: Float
  /// The zero point, an integer in `[qmin, qmax]` (0 for the symmetric mappings).
  let zeroPoint: Float

  /// The parameters of a block with extrema `minimum` and `maximum`, for codes `[qmin, qmax]`.
  /// When either is NaN the scale is NaN and the zero point 0: torch's `amin`/`amax`, `min`,
  /// `max` and `clamp` all keep a NaN, and the NaN zero point becomes 0 in the cast to int8.
  init(minimum: Float, maximum: Float, qmin: Float, qmax: Float, mapping: IntxMapping, format: FloatFormat) {
    guard !minimum.isNaN, !maximum.isNaN else {
      self.scale = .nan
      self.zeroPoint = 0
      return
    }
    // Zero is always inside the range.
    let negative = minimum < 0 ? minimum : 0
    let positive = maximum > 0 ? maximum : 0
    let eps = format.smallestNormal
    var scale: Float
    var zeroPoint: Float = 0
    switch mapping {
    case .symmetric:
      scale = format.round(max(-negative, positive) / ((qmax - qmin) / 2))
    case .symmetricNoClippingError:
      let fromMinimum = format.round(negative / qmin)
      let fromMaximum = format.round(positive / qmax)
      scale = fromMinimum > fromMaximum ? fromMinimum : fromMaximum
    case .asymmetric:
      let range = format.round(positive - negative)
      scale = format.round(range / (qmax - qmin))
    }
    // torch.clamp(min: eps) keeps NaN.
    scale = scale < eps ? eps : scale
    if mapping == .asymmetric {
      let shift = format.round(negative / scale).rounded(.toNearestOrEven)
      zeroPoint = IntegerRounding.clamp(format.round(qmin - shift), qmin, qmax)
    }
    self.scale = scale
    self.zeroPoint = zeroPoint
  }
}
