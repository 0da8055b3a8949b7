/// `R_dt` of the spec for one ``FloatFormat`` as a type, so that a generic loop is specialised per
/// format: its rounding inlines and the loop vectorises, where ``FloatFormat/round(_:)`` would
/// leave a switch in it.
protocol FormatRounding {
  static func round(_ value: Float) -> Float
}

enum BFloat16Rounding: FormatRounding {
  @inline(__always) static func round(_ value: Float) -> Float { BFloat16Conversion.round(value) }
}

enum Float16Rounding: FormatRounding {
  @inline(__always) static func round(_ value: Float) -> Float { Float16Conversion.round(value) }
}

enum Float32Rounding: FormatRounding {
  @inline(__always) static func round(_ value: Float) -> Float { value }
}
