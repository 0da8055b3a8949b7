import Quantization
import SafeTensors

extension TensorDescription {
  /// The numerics and logical shape of the subclass this entry describes, read from its
  /// attributes and the shapes and dtypes of its stored parts.
  ///
  /// - Parameter partTensor: the stored entry of a data part (`qdata`, `scale`, …), or `nil`.
  /// - Throws: `unsupported` for a subclass safeshard cannot decode (the tile-packed and int32
  ///   Int4 layouts), `malformedEntry` for missing or ill-typed attributes, `partShape` when
  ///   `block_size` does not fit the shape.
  func scheme(tensor name: String, partTensor: (String) -> TensorInfo?) throws(TorchAOError)
    -> (scheme: any QuantizationScheme, shape: [Int])
  {
    guard let subclass else { throw TorchAOError(.malformedEntry, "a plain tensor has no scheme", tensor: name) }
    guard let qdata = partTensor("qdata") else {
      throw TorchAOError(.missingPart, "\(subclass) has no qdata part", tensor: name)
    }
    func format(_ key: String) throws(TorchAOError) -> FloatFormat {
      guard let text = self[attribute: key]?["_data"]?.string, let format = FloatFormat(torchName: text) else {
        throw TorchAOError(
          .malformedEntry, "\(subclass) attribute \(key) is not bfloat16, float16 or float32", tensor: name)
      }
      return format
    }
    func blockGranularity(_ shape: [Int], perColumn: Bool = false) throws(TorchAOError) -> Granularity {
      guard let block = Self.integers(self[attribute: "block_size"]), block.count == shape.count, shape.count >= 2
      else {
        throw TorchAOError(.partShape, "block_size does not match the \(shape.count)-D shape \(shape)", tensor: name)
      }
      let leading = Array(repeating: 1, count: shape.count - 1)
      let columns = shape[shape.count - 1]
      if block == leading + [columns] { return .perRow }
      if block == shape { return .perTensor }
      if perColumn, shape.count == 3, block == [1, shape[1], 1] { return .perColumn }
      if Array(block.dropLast()) == leading, let size = block.last, size > 0, columns % size == 0 {
        return .perGroup(size)
      }
      throw TorchAOError(.partShape, "block_size \(block) does not tile the shape \(shape)", tensor: name)
    }

    switch subclass {
    case "Int8Tensor":
      let source = try format("dtype")
      let granularity = try blockGranularity(qdata.shape)
      let reduceRange = self[attribute: "reduce_range"] == .bool(true)
      return (Int8Scheme(source: source, granularity: granularity, reduceRange: reduceRange), qdata.shape)
    case "Float8Tensor":
      let granularity = try blockGranularity(qdata.shape, perColumn: true)
      return (Float8Scheme(source: try format("dtype"), granularity: granularity), qdata.shape)
    case "IntxUnpackedToInt8Tensor":
      let source = try format("dtype")
      guard let target = self[attribute: "target_dtype"]?["_data"]?.string, target.hasPrefix("int"),
        let bits = Int(target.dropFirst(3)), (1...8).contains(bits)
      else { throw TorchAOError(.malformedEntry, "target_dtype is not torch.int1 … torch.int8", tensor: name) }
      let scaleFormat = partTensor("scale").flatMap { FloatFormat(rawValue: $0.dtype.rawValue) }
      // The mapping only changes how scales are chosen, not how stored ones dequantize.
      let scheme = IntxScheme(
        source: source, bits: bits, mapping: .asymmetric, granularity: try blockGranularity(qdata.shape),
        scaleFormat: scaleFormat == source ? nil : scaleFormat)
      return (scheme, qdata.shape)
    case "Int4Tensor":
      guard let shape = Self.integers(self[attribute: "shape"]), shape.count >= 2 else {
        throw TorchAOError(.malformedEntry, "Int4Tensor has no shape attribute", tensor: name)
      }
      // A group as wide as the row reads as per-row; Int4 only knows groups.
      let groupSize: Int
      switch try blockGranularity(shape) {
      case .perGroup(let size): groupSize = size
      case .perRow: groupSize = shape[shape.count - 1]
      case .perTensor, .perColumn:
        throw TorchAOError(.partShape, "Int4Tensor block_size is not a group of one row", tensor: name)
      }
      // activation_dtype is always bfloat16; the weight's dtype is the scales'.
      guard let scale = partTensor("scale"), let source = FloatFormat(rawValue: scale.dtype.rawValue) else {
        throw TorchAOError(.missingPart, "Int4Tensor has no float scale part", tensor: name)
      }
      return (Int4Scheme(source: source, groupSize: groupSize), shape)
    case "MXTensor":
      guard let elementName = self[attribute: "elem_dtype"]?["_data"]?.string,
        let element = MXElement(rawValue: elementName)
      else {
        throw TorchAOError(.unsupported, "MXTensor elem_dtype is not float8_e4m3fn or float4_e2m1fn_x2", tensor: name)
      }
      guard self[attribute: "block_size"]?.uint64 == 32 else {
        throw TorchAOError(.unsupported, "MXTensor block_size is not 32", tensor: name)
      }
      let shape = element == .float4E2M1 ? try Self.unpacked(qdata, tensor: name) : qdata.shape
      return (MXScheme(source: try format("orig_dtype"), element: element), shape)
    case "NVFP4Tensor":
      guard self[attribute: "block_size"]?.uint64 == 16 else {
        throw TorchAOError(.unsupported, "NVFP4Tensor block_size is not 16", tensor: name)
      }
      let shape = try Self.unpacked(qdata, tensor: name)
      let scheme = NVFP4Scheme(
        source: try format("orig_dtype"), usesPerTensorScale: tensorDataNames.contains("per_tensor_scale"))
      return (scheme, shape)
    default:
      throw TorchAOError(.unsupported, "safeshard cannot decode \(subclass) (a GPU-only layout)", tensor: name)
    }
  }

  /// A JSON list of integers that fit in `Int`, or `nil`.
  static func integers(_ value: JSONValue?) -> [Int]? {
    guard let elements = value?.array else { return nil }
    let integers = elements.compactMap { $0.uint64.flatMap { Int(exactly: $0) } }
    return integers.count == elements.count ? integers : nil
  }

  /// The logical shape of packed fp4 `qdata` (two elements a byte): its last dimension doubled.
  static func unpacked(_ qdata: TensorInfo, tensor name: String) throws(TorchAOError) -> [Int] {
    guard let last = qdata.shape.last, case (let doubled, false) = last.multipliedReportingOverflow(by: 2) else {
      throw TorchAOError(.partShape, "packed qdata shape \(qdata.shape) has no logical shape", tensor: name)
    }
    return qdata.shape.dropLast() + [doubled]
  }

  /// The scheme in a few words: `int8 per-row`, `float8 e4m3 per-tensor`, `int4 group 128`, ….
  static func schemeSummary(_ scheme: any QuantizationScheme) -> String {
    func granularity(_ granularity: Granularity) -> String {
      switch granularity {
      case .perRow: "per-row"
      case .perTensor: "per-tensor"
      case .perColumn: "per-column"
      case .perGroup(let size): "group \(size)"
      }
    }
    switch scheme {
    case let int8 as Int8Scheme:
      return "int8 \(granularity(int8.granularity))" + (int8.reduceRange ? " reduce-range" : "")
    case let float8 as Float8Scheme: return "float8 e4m3 \(granularity(float8.granularity))"
    case let intx as IntxScheme: return "int\(intx.bits) \(granularity(intx.granularity))"
    case let int4 as Int4Scheme: return "int4 group \(int4.groupSize)"
    case let mx as MXScheme: return mx.element == .float4E2M1 ? "mxfp4" : "mxfp8"
    case let nvfp4 as NVFP4Scheme: return nvfp4.usesPerTensorScale ? "nvfp4 with per-tensor scale" : "nvfp4"
    default: return "\(type(of: scheme))"
    }
  }
}
