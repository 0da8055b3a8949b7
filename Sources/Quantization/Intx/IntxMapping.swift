/// How intx chooses a block's scale and zero point (torchao `MappingType`).
public enum IntxMapping: String, Sendable, CaseIterable, Hashable {
  /// `s = R_dt(amax ⊘ ((qmax − qmin)/2))`, zero point 0.
  case symmetric = "SYMMETRIC"
  /// `s = R_dt(R_dt(max − min) ⊘ (qmax − qmin))`, zero point `clamp(qmin − rint(R_dt(min ⊘ s)))`,
  /// with min ≤ 0 ≤ max forced.
  case asymmetric = "ASYMMETRIC"
  /// `s` = the larger of `R_dt(min ⊘ qmin)` and `R_dt(max ⊘ qmax)`, zero point 0.
  case symmetricNoClippingError = "SYMMETRIC_NO_CLIPPING_ERR"
}
