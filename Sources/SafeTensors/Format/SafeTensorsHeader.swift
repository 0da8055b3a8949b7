import Foundation
import Synchronization

/// The header of a safetensors file: optional string metadata and the tensor entries.
///
/// ``decode(json:)`` applies every rule of the safetensors reference reader;
/// ``init(metadata:tensors:order:)`` lays tensors out for writing, and ``encoded()`` gives the
/// canonical bytes that start the file.
public struct SafeTensorsHeader: Sendable, Equatable {
  /// The largest header the reference accepts, in bytes.
  public static let maximumSize = 100_000_000

  /// The `__metadata__` object, if the header has one.
  public var metadata: [String: String]?
  /// The tensors in data order (ascending `data_offsets`).
  public private(set) var tensors: [TensorInfo]
  private let names: NameTable

  /// The number of data bytes after the header.
  public var dataLength: Int { tensors.last?.dataOffsets.upperBound ?? 0 }

  /// The entry named `name`, or `nil`.
  public func tensor(named name: String) -> TensorInfo? {
    names.position(of: name, among: tensors).map { tensors[$0] }
  }

  /// How tensors are ordered in a file being written.
  public enum Order: Sendable {
    /// The order the caller gives.
    case given
    /// The reference writer's order: dtype descending in the reference enum order, then name.
    case reference
  }

  /// Lays out `tensors` one after another from offset 0.
  ///
  /// - Throws: ``SafeTensorsError`` with code `invalidArgument` for a duplicate or reserved
  ///   name, and the codes of ``TensorSpec/byteCount()`` for a bad shape.
  public init(metadata: [String: String]?, tensors specs: [TensorSpec], order: Order = .given)
    throws(SafeTensorsError)
  {
    let ordered: [TensorSpec]
    switch order {
    case .given: ordered = specs
    case .reference: ordered = Self.referenceOrder(specs).map { specs[$0] }
    }
    try self.init(metadata: metadata, orderedTensors: Self.laidOut(ordered))
  }

  /// Lays out `tensors` one after another from offset 0, in the order given, for a caller that
  /// has checked their names unique (a conversion plan checks every shard's names at once): the
  /// table of names is built only when a name is first looked up, so a header that is only
  /// written never hashes its names.
  ///
  /// - Throws: ``SafeTensorsError`` with code `invalidArgument` for the reserved name, and the
  ///   codes of ``TensorSpec/byteCount()`` for a bad shape.
  public init(metadata: [String: String]?, uniquelyNamed specs: [TensorSpec]) throws(SafeTensorsError) {
    self.metadata = metadata
    self.tensors = try Self.laidOut(specs)
    self.names = NameTable(nil)
  }

  /// `specs` as entries one after another from offset 0.
  private static func laidOut(_ specs: [TensorSpec]) throws(SafeTensorsError) -> [TensorInfo] {
    var offset = 0
    var tensors: [TensorInfo] = []
    tensors.reserveCapacity(specs.count)
    for spec in specs {
      if spec.name == "__metadata__" {
        throw SafeTensorsError(.invalidArgument, "the name __metadata__ is reserved", tensor: spec.name)
      }
      let (end, overflow) = offset.addingReportingOverflow(try spec.byteCount())
      if overflow { throw SafeTensorsError(.sizeOverflow, "data offsets overflow", tensor: spec.name) }
      tensors.append(TensorInfo(name: spec.name, dtype: spec.dtype, shape: spec.shape, dataOffsets: offset..<end))
      offset = end
    }
    return tensors
  }

  /// The positions in `specs` in the reference writer's order (``Order/reference``): dtype
  /// descending in the reference enum order, then name by UTF-8 bytes.
  ///
  /// A caller that lays the tensors out in this order (``Order/given``) knows where each of its
  /// specs went without looking names up.
  public static func referenceOrder(_ specs: [TensorSpec]) -> [Int] {
    specs.indices.sorted { left, right in
      specs[left].dtype != specs[right].dtype
        ? specs[left].dtype > specs[right].dtype : utf8Less(specs[left].name, specs[right].name)
    }
  }

  /// Wraps tensors that already have their offsets; checks that names are unique.
  init(metadata: [String: String]?, orderedTensors tensors: [TensorInfo]) throws(SafeTensorsError) {
    var positions: [ExactName: Int] = [:]
    positions.reserveCapacity(tensors.count)
    for (position, tensor) in tensors.enumerated()
    where positions.updateValue(position, forKey: ExactName(tensor.name)) != nil {
      throw SafeTensorsError(.invalidArgument, "the name occurs twice", tensor: tensor.name)
    }
    self.init(metadata: metadata, orderedTensors: tensors, positions: positions)
  }

  /// Wraps tensors whose names the caller has checked unique and indexed in `positions`.
  init(metadata: [String: String]?, orderedTensors tensors: [TensorInfo], positions: [ExactName: Int]) {
    self.metadata = metadata
    self.tensors = tensors
    self.names = NameTable(positions)
  }

  public static func == (lhs: SafeTensorsHeader, rhs: SafeTensorsHeader) -> Bool {
    lhs.metadata == rhs.metadata && lhs.tensors == rhs.tensors
  }

  /// The bytes that start the file: the 8-byte little-endian length, then compact JSON with
  /// `__metadata__` first (keys in UTF-8 byte order) and the tensors in data order, padded
  /// with spaces to a multiple of 8.
  ///
  /// The same header always gives the same bytes.
  public func encoded() -> [UInt8] {
    encoded(metadataJSON: metadata.map(Self.metadataJSON))
  }

  /// The compact JSON of a `__metadata__` object, keys in UTF-8 byte order: the part of
  /// ``encoded()`` that every shard of a checkpoint shares. torchao's metadata describes every
  /// tensor of the model, so a plan of many shards encodes it once, not once a shard.
  public static func metadataJSON(_ metadata: [String: String]) -> [UInt8] {
    var bytes: [UInt8] = [UInt8(ascii: "{")]
    for (index, (key, value)) in metadata.sorted(by: { utf8Less($0.key, $1.key) }).enumerated() {
      if index > 0 { bytes.append(UInt8(ascii: ",")) }
      JSONWriter.appendString(key, style: .compact, to: &bytes)
      bytes.append(UInt8(ascii: ":"))
      JSONWriter.appendString(value, style: .compact, to: &bytes)
    }
    bytes.append(UInt8(ascii: "}"))
    return bytes
  }

  /// ``encoded()``, given ``metadataJSON(_:)`` of this header's ``metadata`` (`nil` for none).
  public func encoded(metadataJSON: [UInt8]?) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: 8)
    bytes.append(UInt8(ascii: "{"))
    if let metadataJSON {
      JSONWriter.appendString("__metadata__", style: .compact, to: &bytes)
      bytes.append(UInt8(ascii: ":"))
      bytes.append(contentsOf: metadataJSON)
    }
    for (index, tensor) in tensors.enumerated() {
      if index > 0 || metadataJSON != nil { bytes.append(UInt8(ascii: ",")) }
      JSONWriter.appendString(tensor.name, style: .compact, to: &bytes)
      bytes.append(UInt8(ascii: ":"))
      // What `JSONWriter` writes for {"dtype":…,"shape":[…],"data_offsets":[…]}, without
      // building the value: a 300 000-tensor header is written in a fraction of the time.
      #"{"dtype":""#.appendUTF8(to: &bytes)
      tensor.dtype.rawValue.appendUTF8(to: &bytes)
      #"","shape":["#.appendUTF8(to: &bytes)
      for (axis, length) in tensor.shape.enumerated() {
        if axis > 0 { bytes.append(UInt8(ascii: ",")) }
        Self.appendDecimal(length, to: &bytes)
      }
      #"],"data_offsets":["#.appendUTF8(to: &bytes)
      Self.appendDecimal(tensor.dataOffsets.lowerBound, to: &bytes)
      bytes.append(UInt8(ascii: ","))
      Self.appendDecimal(tensor.dataOffsets.upperBound, to: &bytes)
      "]}".appendUTF8(to: &bytes)
    }
    bytes.append(UInt8(ascii: "}"))
    let padding = (8 - (bytes.count - 8) % 8) % 8
    bytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: padding))
    withUnsafeBytes(of: UInt64(bytes.count - 8).littleEndian) { bytes.replaceSubrange(0..<8, with: $0) }
    return bytes
  }

  /// Appends the decimal digits of `value` (`String(value)`, without making the string).
  private static func appendDecimal(_ value: Int, to bytes: inout [UInt8]) {
    if value < 0 { bytes.append(UInt8(ascii: "-")) }
    var magnitude = value.magnitude
    var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: room for 20 digits
    withUnsafeMutableBytes(of: &digits) { buffer in
      var start = buffer.count
      repeat {
        start -= 1
        buffer[start] = UInt8(ascii: "0") + UInt8(magnitude % 10)
        magnitude /= 10
      } while magnitude > 0
      bytes.append(contentsOf: buffer[start...])
    }
  }
}

/// A header's table of tensor names to positions in its `tensors`, given when it is made (a
/// decoded header's scan builds it anyway) or built at the first lookup.
private final class NameTable: Sendable {
  private let positions: Mutex<[ExactName: Int]?>

  init(_ positions: [ExactName: Int]?) {
    self.positions = Mutex(positions)
  }

  /// The position of `name` in `tensors`, the tensors of the header that owns this table.
  func position(of name: String, among tensors: [TensorInfo]) -> Int? {
    positions.withLock { positions in
      if positions == nil {
        positions = Dictionary(
          tensors.enumerated().map { (ExactName($1.name), $0) }, uniquingKeysWith: { first, _ in first })
      }
      return positions![ExactName(name)]
    }
  }
}

/// Whether `left` sorts before `right` by UTF-8 bytes (Rust's and Python's string order).
///
/// Compares the bytes with `memcmp` where both strings are contiguous (native strings are):
/// sorting a 300 000-tensor header spends most of its time here.
func utf8Less(_ left: String, _ right: String) -> Bool {
  let less = left.utf8.withContiguousStorageIfAvailable { left in
    right.utf8.withContiguousStorageIfAvailable { right in
      let common = min(left.count, right.count)
      let order = common == 0 ? 0 : memcmp(left.baseAddress!, right.baseAddress!, common)
      return order != 0 ? order < 0 : left.count < right.count
    }
  }
  return (less ?? nil) ?? left.utf8.lexicographicallyPrecedes(right.utf8)
}
