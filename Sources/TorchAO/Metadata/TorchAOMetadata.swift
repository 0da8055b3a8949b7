import SafeTensors

/// The `__metadata__` torchao's `flatten_tensor_state_dict` produces: one ``TensorDescription``
/// per state-dict entry, and `tensor_names` listing the entries in state-dict order.
public struct TorchAOMetadata: Sendable, Equatable {
  /// The state-dict entries in order, with their descriptions.
  public var entries: [(name: String, description: TensorDescription)] {
    didSet { positions = Self.positions(of: entries) }
  }
  /// Where each name first appears in ``entries``, so that ``description(of:)`` is a lookup (a
  /// checkpoint of 100 000 tensors asks once per stored tensor).
  private var positions: [ExactName: Int]

  public static func == (lhs: TorchAOMetadata, rhs: TorchAOMetadata) -> Bool {
    lhs.entries.elementsEqual(rhs.entries) { $0.name == $1.name && $0.description == $1.description }
  }

  /// Creates metadata for `entries`.
  public init(entries: [(name: String, description: TensorDescription)]) {
    self.entries = entries
    self.positions = Self.positions(of: entries)
  }

  /// Creates metadata for `entries`, whose names `positions` indexes as ``positions(of:)`` would.
  private init(entries: [(name: String, description: TensorDescription)], positions: [ExactName: Int]) {
    self.entries = entries
    self.positions = positions
  }

  /// The description of the entry named `name`, or `nil`.
  public func description(of name: String) -> TensorDescription? {
    position(of: name).map { entries[$0].description }
  }

  /// Where the entry named `name` first appears in ``entries``, or `nil`.
  func position(of name: String) -> Int? {
    positions[ExactName(name)]
  }

  private static func positions(of entries: [(name: String, description: TensorDescription)]) -> [ExactName: Int] {
    Dictionary(entries.enumerated().map { (ExactName($1.name), $0) }, uniquingKeysWith: { first, _ in first })
  }

  /// The string map for a safetensors header: every entry, `tensor_names`, and the `extra`
  /// keys (transformers adds `"format": "pt"`).
  public func encoded(extra: [String: String] = [:]) -> [String: String] {
    Self.encoded(entries: entries, extra: extra)
  }

  /// ``encoded(extra:)`` of the metadata of `entries`, without indexing them first.
  ///
  /// A model's weights share a few descriptions (one per shape and scheme), so each distinct
  /// description is encoded once and its text shared.
  public static func encoded(entries: [(name: String, description: TensorDescription)], extra: [String: String] = [:])
    -> [String: String]
  {
    var metadata = extra
    metadata.reserveCapacity(extra.count + entries.count + 1)
    var texts: [(description: TensorDescription, text: String)] = []
    for (name, description) in entries {
      if let known = texts.first(where: { $0.description == description }) {
        metadata[name] = known.text
      } else {
        let text = description.encoded()
        if texts.count < 64 { texts.append((description, text)) }
        metadata[name] = text
      }
    }
    metadata["tensor_names"] = JSONWriter.string(.array(entries.map { .string($0.name) }), style: .python)
    return metadata
  }

  /// Whether `metadata` is torchao's: it has `tensor_names` (torchao's `is_metadata_torchao`
  /// asks the same before anything else).
  public static func isTorchAO(_ metadata: [String: String]?) -> Bool {
    metadata?["tensor_names"] != nil
  }

  /// Decodes a file's `__metadata__` with the checks of torchao's `is_metadata_torchao` and its
  /// allowlist: `tensor_names` is a non-empty JSON list of strings, each naming an entry whose
  /// description decodes (``TensorDescription/init(decoding:tensor:)``). Keys not listed in
  /// `tensor_names` (`"format"`, say) are ignored, as torchao ignores them.
  ///
  /// - Throws: `tensorNames`, `malformedEntry` or `unknownType`.
  public init(decoding metadata: [String: String]) throws(TorchAOError) {
    guard let text = metadata["tensor_names"] else {
      throw TorchAOError(.tensorNames, "metadata has no \"tensor_names\"")
    }
    guard let list = try? JSONParser.parse(text).array, !list.isEmpty else {
      throw TorchAOError(.tensorNames, "\"tensor_names\" is not a non-empty JSON list")
    }
    var entries: [(String, TensorDescription)] = []
    entries.reserveCapacity(list.count)
    // The table that refuses a repeated name is the one ``description(of:)`` looks names up in.
    var positions = [ExactName: Int](minimumCapacity: list.count)
    // Most entries repeat one of a few texts (one per shape and scheme): decode each text once.
    var decoded: [(text: String, description: TensorDescription)] = []
    for item in list {
      guard let name = item.string else {
        throw TorchAOError(.tensorNames, "\"tensor_names\" holds \(JSONWriter.string(item)), which is not a string")
      }
      guard positions.updateValue(entries.count, forKey: ExactName(name)) == nil else {
        throw TorchAOError(.tensorNames, "\"tensor_names\" lists the entry twice", tensor: name)
      }
      guard let entry = metadata[name] else {
        throw TorchAOError(
          .tensorNames, "\"tensor_names\" lists an entry that the metadata does not have", tensor: name)
      }
      if let known = decoded.first(where: { ExactName($0.text) == ExactName(entry) }) {
        entries.append((name, known.description))
      } else {
        let description = try TensorDescription(decoding: entry, tensor: name)
        if decoded.count < 64 { decoded.append((entry, description)) }
        entries.append((name, description))
      }
    }
    self.init(entries: entries, positions: positions)
  }
}
