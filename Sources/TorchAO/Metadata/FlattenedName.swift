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
    guard let dot = parameter.lastIndex(of: ".") else { return "_\(parameter)_" }
    return "\(parameter[...dot])_\(parameter[parameter.index(after: dot)...])_"
  }
}
