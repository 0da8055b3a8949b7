import SafeTensors

/// One entry of torchao's safetensors metadata: what
/// `json.dumps(tensor, cls=TensorSubclassAttributeJSONEncoder)` writes for a state-dict entry.
///
/// A subclass has a `_type` (``subclass``), its non-tensor attributes (`_data`, in torchao's
/// key order) and the names of its data parts (`_tensor_data_names`); a plain tensor is
/// `{"_type": "Tensor"}`. Decoding accepts only the `_type`s of ``allowedSubclasses`` at the top
/// and ``allowedAttributeTypes`` nested inside `_data`: nothing in a file can name anything else.
public struct TensorDescription: Sendable, Equatable {
  /// The subclass names torchao's loader rebuilds (SPEC §8.2).
  public static let allowedSubclasses: Set<String> = [
    "Float8Tensor", "Int4Tensor", "Int4TilePackedTo4dTensor", "IntxUnpackedToInt8Tensor", "Int8Tensor",
    "Int4PlainInt32Tensor", "MXTensor", "NVFP4Tensor",
  ]

  /// The `_type`s allowed inside `_data`: dtypes, enums and the small config dataclasses torchao
  /// writes there.
  public static let allowedAttributeTypes: Set<String> = [
    "torch.dtype", "Float8MMConfig", "QuantizeTensorToFloat8Kwargs", "QuantizeTensorToInt8Kwargs",
    "QuantizeTensorToMXKwargs", "QuantizeTensorToNVFP4Kwargs", "PerRow", "PerTensor", "PerGroup", "PerAxis",
    "PerBlock", "PerToken", "KernelPreference", "MappingType", "ScaleCalculationMode", "Float8PackingFormat",
  ]

  /// A plain tensor, `{"_type": "Tensor"}`.
  public static let plainTensor = TensorDescription(subclass: nil, attributes: [], tensorDataNames: [])

  /// The subclass name, or `nil` for a plain tensor.
  public var subclass: String?
  /// `_data`: the attributes in torchao's order.
  public var attributes: [JSONMember]
  /// `_tensor_data_names`: the data parts, in torchao's order.
  public var tensorDataNames: [String]

  /// Creates a description.
  public init(subclass: String?, attributes: [JSONMember], tensorDataNames: [String]) {
    self.subclass = subclass
    self.attributes = attributes
    self.tensorDataNames = tensorDataNames
  }

  /// The attribute named `key`, or `nil`.
  public subscript(attribute key: String) -> JSONValue? {
    attributes.first { $0.key == key }?.value
  }

  /// The description as JSON.
  public var json: JSONValue {
    guard let subclass else { return .object([JSONMember("_type", .string("Tensor"))]) }
    return .object([
      JSONMember("_type", .string(subclass)), JSONMember("_data", .object(attributes)),
      JSONMember("_tensor_data_names", .array(tensorDataNames.map { .string($0) })),
    ])
  }

  /// The metadata string, formatted as Python's `json.dumps` formats it.
  public func encoded() -> String {
    JSONWriter.string(json, style: .python)
  }

  /// Decodes the metadata string of `tensor`.
  ///
  /// - Throws: `malformedEntry` when it is not the JSON object torchao writes, `unknownType`
  ///   for a `_type` outside the allowlists.
  public init(decoding text: String, tensor: String) throws(TorchAOError) {
    let value: JSONValue
    do {
      value = try JSONParser.parse(text)
    } catch {
      throw TorchAOError(.malformedEntry, "metadata entry is not JSON: \(error)", tensor: tensor)
    }
    guard value.members != nil, let type = value["_type"]?.string else {
      throw TorchAOError(.malformedEntry, "metadata entry is not an object with a string \"_type\"", tensor: tensor)
    }
    if type == "Tensor" {
      self = .plainTensor
      return
    }
    guard Self.allowedSubclasses.contains(type) else {
      throw TorchAOError(
        .unknownType, "_type \"\(type)\" is not a torchao tensor subclass on the allowlist", tensor: tensor)
    }
    guard let attributes = value["_data"]?.members else {
      throw TorchAOError(.malformedEntry, "\(type) has no \"_data\" object", tensor: tensor)
    }
    guard let names = value["_tensor_data_names"]?.array?.compactMap(\.string),
      names.count == value["_tensor_data_names"]?.array?.count, !names.isEmpty, Set(names).count == names.count
    else {
      throw TorchAOError(.malformedEntry, "\(type) has no list of distinct \"_tensor_data_names\"", tensor: tensor)
    }
    for attribute in attributes { try Self.checkAllowed(attribute.value, path: attribute.key, tensor: tensor) }
    self.init(subclass: type, attributes: attributes, tensorDataNames: names)
  }

  /// Refuses any nested `_type` outside ``allowedAttributeTypes``.
  private static func checkAllowed(_ value: JSONValue, path: String, tensor: String) throws(TorchAOError) {
    switch value {
    case .object(let members):
      if let type = value["_type"] {
        guard let name = type.string, allowedAttributeTypes.contains(name) else {
          throw TorchAOError(
            .unknownType, "attribute \(path) has _type \(JSONWriter.string(type)), which is not on the allowlist",
            tensor: tensor)
        }
      }
      for member in members { try checkAllowed(member.value, path: "\(path).\(member.key)", tensor: tensor) }
    case .array(let elements):
      for (index, element) in elements.enumerated() {
        try checkAllowed(element, path: "\(path)[\(index)]", tensor: tensor)
      }
    default:
      break
    }
  }
}
