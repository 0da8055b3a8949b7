/// torchao's flattened tensor names: a subclass stored under `<module>.<param>` puts its part
/// `<part>` under `<module>._<param>_<part>` (SPEC §7.1).
public enum FlattenedName {
  /// The stored name of `part` of the parameter named `parameter`.
  ///
  /// `model.layers.0.mlp.down_proj.weight` + `qdata` → `model.layers.0.mlp.down_proj._weight_qdata`.
  public static func name(parameter: String, part: String) -> String {
    "\(prefix(of: parameter))\(part)"
  }

  /// `<module>._<param>_`: what every part name of `parameter` starts with.
  public static func prefix(of parameter: String) -> String {
    // An ASCII name (every name a checkpoint of 100 000 weights asks for) is cut at its last dot
    // byte and written in one allocation; any other is cut at its last `.` character.
    let utf8 = parameter.utf8
    if utf8.allSatisfy({ $0 < 0x80 }) {
      let dot = utf8.lastIndex(of: UInt8(ascii: "."))
      let module = dot.map { utf8.distance(from: utf8.startIndex, to: $0) + 1 } ?? 0
      return String(unsafeUninitializedCapacity: utf8.count + 2) { buffer in
        var end = buffer[..<module].initialize(from: utf8.prefix(module)).index
        buffer[end] = UInt8(ascii: "_")
        end = buffer[(end + 1)...].initialize(from: utf8.dropFirst(module)).index
        buffer[end] = UInt8(ascii: "_")
        return end + 1
      }
    }
    guard let dot = parameter.lastIndex(of: ".") else { return "_\(parameter)_" }
    return "\(parameter[...dot])_\(parameter[parameter.index(after: dot)...])_"
  }
}
