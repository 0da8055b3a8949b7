import Foundation

/// Writes pickles opcode by opcode, for tests that need exact (and hostile) bytes.
struct PickleWriter {
  var bytes: [UInt8]

  init(protocol version: UInt8 = 2) {
    bytes = [0x80, version]
  }

  mutating func op(_ code: UInt8, _ operand: [UInt8] = []) {
    bytes.append(code)
    bytes += operand
  }

  mutating func global(_ module: String, _ name: String) {
    op(0x63, Array("\(module)\n\(name)\n".utf8))
  }

  mutating func string(_ text: String) {
    let utf8 = Array(text.utf8)
    op(0x58, le(UInt32(utf8.count)) + utf8)
  }

  mutating func int(_ value: Int) {
    switch value {
    case 0...0xFF: op(0x4B, [UInt8(value)])
    case 0x100...0xFFFF: op(0x4D, le(UInt16(value)))
    case Int(Int32.min)...Int(Int32.max): op(0x4A, le(UInt32(bitPattern: Int32(value))))
    default: op(0x8A, [8] + le(UInt64(bitPattern: Int64(value))))
    }
  }

  mutating func bool(_ value: Bool) { op(value ? 0x88 : 0x89) }
  mutating func none() { op(0x4E) }
  mutating func mark() { op(0x28) }
  mutating func tuple() { op(0x74) }
  mutating func emptyTuple() { op(0x29) }
  mutating func emptyDict() { op(0x7D) }
  mutating func emptyList() { op(0x5D) }
  mutating func reduce() { op(0x52) }
  mutating func newObject() { op(0x81) }
  mutating func build() { op(0x62) }
  mutating func setItem() { op(0x73) }
  mutating func setItems() { op(0x75) }
  mutating func append() { op(0x61) }
  mutating func put(_ index: UInt8) { op(0x71, [index]) }
  mutating func get(_ index: UInt8) { op(0x68, [index]) }
  mutating func longPut(_ index: UInt32) { op(0x72, le(index)) }
  mutating func longGet(_ index: UInt32) { op(0x6A, le(index)) }
  mutating func stop() { op(0x2E) }

  /// `(v0, v1, ...)` of ints.
  mutating func intTuple(_ values: [Int]) {
    mark()
    for value in values { int(value) }
    tuple()
  }

  /// `collections.OrderedDict()`.
  mutating func orderedDict() {
    global("collections", "OrderedDict")
    emptyTuple()
    reduce()
  }

  /// `('storage', torch.<type>, key, 'cpu', numel)` as a persistent id.
  mutating func storage(_ type: String, key: String, count: Int, module: String = "torch") {
    mark()
    string("storage")
    global(module, type)
    string(key)
    string("cpu")
    int(count)
    tuple()
    op(0x51)
  }

  /// `_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())`.
  mutating func tensor(
    _ type: String = "FloatStorage", key: String, count: Int, offset: Int = 0, shape: [Int], strides: [Int]
  ) {
    global("torch._utils", "_rebuild_tensor_v2")
    mark()
    storage(type, key: key, count: count)
    int(offset)
    intTuple(shape)
    intTuple(strides)
    bool(false)
    orderedDict()
    tuple()
    reduce()
  }

  /// `_rebuild_tensor_v3(UntypedStorage, offset, size, stride, False, OrderedDict(), torch.<dtype>)`.
  mutating func tensorV3(_ dtype: String, key: String, bytes count: Int, offset: Int = 0, shape: [Int], strides: [Int])
  {
    global("torch._utils", "_rebuild_tensor_v3")
    mark()
    storage("UntypedStorage", key: key, count: count, module: "torch.storage")
    int(offset)
    intTuple(shape)
    intTuple(strides)
    bool(false)
    orderedDict()
    global("torch", dtype)
    tuple()
    reduce()
  }

  /// A state dict `{name: tensor}` whose values `body` writes, one call per entry.
  static func stateDict(_ entries: [(String, (inout PickleWriter) -> Void)]) -> [UInt8] {
    var writer = PickleWriter()
    writer.orderedDict()
    for (name, body) in entries {
      writer.string(name)
      body(&writer)
      writer.setItem()
    }
    writer.stop()
    return writer.bytes
  }
}

func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
  withUnsafeBytes(of: value.littleEndian) { Array($0) }
}

/// A new empty directory for one test's files.
func temporaryDirectory() -> URL {
  let url = FileManager.default.temporaryDirectory.appendingPathComponent("pickle-tests-\(UUID().uuidString)")
  try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
  return url
}
