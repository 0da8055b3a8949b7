import Quantization
import SafeTensors

/// Reads the legacy torchao (≤ 0.17) pickle shapes into ``AffineQuantizedTensor``:
///
/// - `AffineQuantizedTensor` wrapper, state `{tensor_impl, block_size, shape?, quant_min,
///   quant_max, zero_point_domain, dtype?}`;
/// - its `tensor_impl`, a `PlainAQTTensorImpl` (`int_data, scale, zero_point, _layout =
///   PlainLayout()`) or `Float8AQTTensorImpl` (`float8_data, scale, transposed = False,
///   _layout = Float8Layout(mm_config)`);
/// - `LinearActivationQuantizedTensor` wrapper, state `{original_weight_tensor, input_quant_func,
///   quant_kwargs = {}}`, whose function is only a name on the allowlist.
///
/// Packed layouts (`Int4CPULayout`, `TensorCoreTiledLayout`) are refused.
struct AffineQuantizedMatcher {
  let tensors: TensorMatcher

  /// Whether `wrapper` is one of the legacy classes (to be read here).
  static func handles(_ wrapper: WrapperSubclass) -> Bool {
    ["AffineQuantizedTensor", "LinearActivationQuantizedTensor"].contains(wrapper.type.name)
  }

  func read(_ wrapper: WrapperSubclass) throws(PickleError) -> AffineQuantizedTensor {
    do throws(PickleError) {
      return try match(wrapper)
    } catch {
      var located = error
      if located.offset == nil { located.offset = wrapper.offset }
      throw located
    }
  }

  private func match(_ wrapper: WrapperSubclass) throws(PickleError) -> AffineQuantizedTensor {
    if wrapper.type.name == "LinearActivationQuantizedTensor" {
      try checkKeys(wrapper, allowed: ["original_weight_tensor", "input_quant_func", "quant_kwargs"])
      guard let function = wrapper.state["input_quant_func"]?.global,
        function.module == "torchao.quantization.quant_api",
        TorchAONames.inputQuantizationFunctions.contains(function.name)
      else { throw fail("LinearActivationQuantizedTensor: input_quant_func is not an allowlisted torchao function") }
      guard let kwargs = wrapper.state["quant_kwargs"], TensorMatcher.isEmpty(kwargs) else {
        throw fail("LinearActivationQuantizedTensor: quant_kwargs is not empty")
      }
      guard case .call(let inner)? = wrapper.state["original_weight_tensor"], let weight = try WrapperSubclass(inner),
        weight.type.name == "AffineQuantizedTensor"
      else { throw fail("LinearActivationQuantizedTensor does not wrap an AffineQuantizedTensor") }
      var tensor = try read(weight)
      tensor.inputQuantization = function.description
      return tensor
    }
    guard wrapper.type.name == "AffineQuantizedTensor" else {
      throw PickleError(.subclass, "\(wrapper.type) is not on the allowlist")
    }
    try checkKeys(
      wrapper, allowed: ["tensor_impl", "block_size", "shape", "quant_min", "quant_max", "zero_point_domain", "dtype"])
    guard let dtype = FloatFormat(torchName: wrapper.dtype) else {
      throw PickleError(.affineQuantized, "AffineQuantizedTensor of dtype \(wrapper.dtype), not bf16, fp16 or fp32")
    }
    guard let blockValue = wrapper.state["block_size"] else { throw fail("AffineQuantizedTensor has no block_size") }
    let blockSize = try TensorMatcher.integers(blockValue, "block sizes")
    let shape = wrapper.shape
    guard blockSize.count == shape.count, zip(shape, blockSize).allSatisfy({ $1 > 0 && $0 % $1 == 0 }) else {
      throw PickleError(.affineQuantized, "block_size \(blockSize) does not tile the shape \(shape)")
    }
    var range: ClosedRange<Int>?
    if case .int(let low)? = wrapper.state["quant_min"], case .int(let high)? = wrapper.state["quant_max"], low <= high
    {
      range = Int(low)...Int(high)
    }
    guard case .call(let implementation)? = wrapper.state["tensor_impl"], let impl = try WrapperSubclass(implementation)
    else { throw fail("AffineQuantizedTensor has no tensor_impl subclass") }
    let tensor: AffineQuantizedTensor
    switch impl.type.name {
    case "PlainAQTTensorImpl":
      try checkKeys(impl, allowed: ["int_data", "scale", "zero_point", "_layout"])
      try checkLayout(impl, "PlainLayout")
      let domain = try zeroPointDomain(wrapper.state["zero_point_domain"])
      guard domain != "FLOAT" else {
        throw PickleError(.affineQuantized, "the FLOAT zero-point domain is not supported for the plain layout")
      }
      let data = try part(impl, "int_data")
      guard [.i8, .u8, .i16, .i32].contains(data.dtype) else {
        throw PickleError(.affineQuantized, "int_data of \(data.dtype.rawValue) is not an integer type")
      }
      var zeroPoint: PickleTensor?
      if let value = impl.state["zero_point"], domain != "NONE" {
        if case .none = value {} else { zeroPoint = try part(impl, "zero_point") }
      }
      if let zeroPoint, ![.i8, .u8, .i16, .i32, .i64].contains(zeroPoint.dtype) {
        throw PickleError(.affineQuantized, "zero_point of \(zeroPoint.dtype.rawValue) is not an integer type")
      }
      tensor = AffineQuantizedTensor(
        layout: .plain, data: data, scale: try part(impl, "scale"), zeroPoint: zeroPoint, blockSize: blockSize,
        shape: shape, dtype: dtype, quantizationRange: range, inputQuantization: nil)
    case "Float8AQTTensorImpl":
      try checkKeys(impl, allowed: ["float8_data", "scale", "transposed", "_layout"])
      try checkLayout(impl, "Float8Layout")
      if let transposed = impl.state["transposed"] {
        guard case .bool(false) = transposed else {
          throw PickleError(.affineQuantized, "a transposed Float8AQTTensorImpl is not supported")
        }
      }
      let data = try part(impl, "float8_data")
      guard [.f8e4m3, .f8e5m2].contains(data.dtype) else {
        throw PickleError(.affineQuantized, "float8_data of \(data.dtype.rawValue) is not float8")
      }
      tensor = AffineQuantizedTensor(
        layout: .float8, data: data, scale: try part(impl, "scale"), zeroPoint: nil, blockSize: blockSize, shape: shape,
        dtype: dtype, quantizationRange: range, inputQuantization: nil)
    case "Int4CPUAQTTensorImpl", "TensorCoreTiledAQTTensorImpl":
      throw PickleError(
        .affineQuantized,
        "packed AQT layouts are not supported (\(impl.type.name)): only PlainLayout and Float8Layout are dequantized")
    default:
      throw PickleError(.subclass, "AffineQuantizedTensor with tensor_impl \(impl.type) is not on the allowlist")
    }
    try checkParts(tensor)
    return tensor
  }

  /// The data must have the weight's shape; scale and zero point one value per block.
  private func checkParts(_ tensor: AffineQuantizedTensor) throws(PickleError) {
    guard tensor.data.shape == tensor.shape else {
      throw PickleError(.affineQuantized, "the data has shape \(tensor.data.shape), the weight \(tensor.shape)")
    }
    guard FloatFormat(rawValue: tensor.scale.dtype.rawValue) != nil else {
      throw PickleError(.affineQuantized, "scale of \(tensor.scale.dtype.rawValue) is not bf16, fp16 or fp32")
    }
    for part in [tensor.scale] + (tensor.zeroPoint.map { [$0] } ?? []) where part.elementCount != tensor.blockCount {
      throw PickleError(
        .affineQuantized, "a scale or zero point of \(part.elementCount) values for \(tensor.blockCount) blocks")
    }
  }

  private func part(_ impl: WrapperSubclass, _ key: String) throws(PickleError) -> PickleTensor {
    guard let value = impl.state[key] else { throw fail("\(impl.type.name) has no \(key)") }
    do throws(PickleError) {
      return try tensors.tensor(value)
    } catch {
      throw PickleError(error.code, "\(impl.type.name).\(key): \(error.message)", offset: error.offset)
    }
  }

  private func checkKeys(_ wrapper: WrapperSubclass, allowed: Set<String>) throws(PickleError) {
    // torch marks a subclass held as a module's Parameter with `_is_param`.
    if case let value? = wrapper.state["_is_param"] {
      guard case .bool = value else { throw fail("\(wrapper.type.name)._is_param is \(value.kind)") }
    }
    if let key = wrapper.state.keys.first(where: { !allowed.contains($0) && $0 != "_is_param" }) {
      throw PickleError(.subclass, "\(wrapper.type.name): state key '\(key)' is not one of \(allowed.sorted())")
    }
  }

  /// `_layout` must be `NEWOBJ(name)`, with at most a BUILD of `{mm_config: None | Float8MMConfig}`.
  private func checkLayout(_ impl: WrapperSubclass, _ name: String) throws(PickleError) {
    guard case .call(let layout)? = impl.state["_layout"], layout.kind == .newObject, layout.arguments.isEmpty,
      let type = layout.function.global, type.name == name, type.module.hasPrefix("torchao.")
    else { throw fail("\(impl.type.name)._layout is not \(name)()") }
    switch layout.state {
    case nil: return
    case .dict(let state)?:
      var encoder = AttributeEncoder()
      for (key, value) in state.members {
        guard key == "mm_config" else { throw PickleError(.subclass, "\(name): state key '\(key)'") }
        _ = try encoder.encode(value)
      }
    default: throw fail("\(name) has state \(layout.state!.kind)")
    }
  }

  /// The member name of `ZeroPointDomain` (`INT`, `FLOAT`, `NONE`), `INT` when absent.
  private func zeroPointDomain(_ value: PickleValue?) throws(PickleError) -> String {
    guard let value else { return "INT" }
    guard case .call(let call) = value, call.function.global?.name == "ZeroPointDomain", call.arguments.count == 1,
      case .int(let number) = call.arguments[0], (1...3).contains(number)
    else { throw fail("zero_point_domain is \(value.kind), not a ZeroPointDomain") }
    return ["INT", "FLOAT", "NONE"][Int(number) - 1]
  }

  private func fail(_ message: String) -> PickleError {
    PickleError(.unexpectedObject, message)
  }
}

extension FloatFormat {
  /// The format of a torch dtype name (`bfloat16`, `float16`, `float32`), or `nil`.
  init?(torchName: String) {
    switch torchName {
    case "bfloat16": self = .bf16
    case "float16": self = .fp16
    case "float32": self = .fp32
    default: return nil
    }
  }
}
