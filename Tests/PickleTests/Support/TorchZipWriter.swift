import Foundation

/// Writes archives the way torch.save does (stored entries, data aligned to 64 by an "FB" extra
/// field, zip64 end records), with switches for the hostile variants.
struct TorchZipWriter {
  struct Record {
    var name: String
    var data: [UInt8]
    var method: UInt16 = 0
    var flags: UInt16 = 0x0808
    /// When set, the record's data is this many zero bytes left as a hole in the file (``writeSparse``).
    var sparseSize: Int? = nil
  }

  var records: [Record] = []

  /// A checkpoint: `prefix/data.pkl`, `byteorder`, storages `data/<key>`, `version`.
  init(prefix: String = "archive", pickle: [UInt8], storages: [(String, [UInt8])], byteOrder: String? = "little") {
    records.append(Record(name: "\(prefix)/data.pkl", data: pickle))
    records.append(Record(name: "\(prefix)/.format_version", data: Array("1".utf8)))
    if let byteOrder { records.append(Record(name: "\(prefix)/byteorder", data: Array(byteOrder.utf8))) }
    for (key, data) in storages { records.append(Record(name: "\(prefix)/data/\(key)", data: data)) }
    records.append(Record(name: "\(prefix)/version", data: Array("3\n".utf8)))
  }

  /// The archive's bytes; `zip64` puts every size and offset in zip64 extra fields.
  func bytes(zip64: Bool = false) -> [UInt8] {
    var out: [UInt8] = []
    var central: [UInt8] = []
    for record in records {
      let name = Array(record.name.utf8)
      let offset = out.count
      // Local header with zero sizes (torch writes a data descriptor), padded to 64.
      var local = le(UInt32(0x0403_4B50)) + le(UInt16(20)) + le(record.flags) + le(record.method)
      local += le(UInt16(0)) + le(UInt16(0)) + le(UInt32(0)) + le(UInt32(0)) + le(UInt32(0))
      let unpadded = offset + 30 + name.count + 4
      let padding = (64 - unpadded % 64) % 64
      local += le(UInt16(name.count)) + le(UInt16(4 + padding)) + name
      local += le(UInt16(0x4246)) + le(UInt16(padding)) + [UInt8](repeating: 0x5A, count: padding)
      out += local + record.data
      out += le(UInt32(0x0807_4B50)) + le(UInt32(0)) + le(UInt32(record.data.count)) + le(UInt32(record.data.count))
      var extra: [UInt8] = []
      if zip64 {
        extra =
          le(UInt16(1)) + le(UInt16(24)) + le(UInt64(record.data.count)) + le(UInt64(record.data.count))
          + le(UInt64(offset))
      }
      let size32: UInt32 = zip64 ? 0xFFFF_FFFF : UInt32(record.data.count)
      central += le(UInt32(0x0201_4B50)) + le(UInt16(20)) + le(UInt16(20)) + le(record.flags) + le(record.method)
      central += le(UInt16(0)) + le(UInt16(0)) + le(UInt32(0)) + le(size32) + le(size32)
      central += le(UInt16(name.count)) + le(UInt16(extra.count)) + le(UInt16(0)) + le(UInt16(0)) + le(UInt16(0))
      central += le(UInt32(0)) + le(zip64 ? 0xFFFF_FFFF : UInt32(offset)) + name + extra
    }
    let directoryOffset = out.count
    out += central
    let zip64Offset = out.count
    out += le(UInt32(0x0606_4B50)) + le(UInt64(44)) + le(UInt16(45)) + le(UInt16(45)) + le(UInt32(0)) + le(UInt32(0))
    out +=
      le(UInt64(records.count)) + le(UInt64(records.count)) + le(UInt64(central.count)) + le(UInt64(directoryOffset))
    out += le(UInt32(0x0706_4B50)) + le(UInt32(0)) + le(UInt64(zip64Offset)) + le(UInt32(1))
    let count16: UInt16 = zip64 ? 0xFFFF : UInt16(records.count)
    out += le(UInt32(0x0605_4B50)) + le(UInt16(0)) + le(UInt16(0)) + le(count16) + le(count16)
    out += le(zip64 ? 0xFFFF_FFFF : UInt32(central.count)) + le(zip64 ? 0xFFFF_FFFF : UInt32(directoryOffset))
    out += le(UInt16(0))
    return out
  }

  /// Writes the archive to `path` like ``bytes(zip64:)`` (32-bit fields), leaving the data of
  /// records with a ``Record/sparseSize`` as holes, so that a file of gigabytes takes no disk.
  func writeSparse(to path: String) throws {
    _ = FileManager.default.createFile(atPath: path, contents: nil)
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    defer { try? handle.close() }
    var central: [UInt8] = []
    var offset = 0
    for record in records {
      let name = Array(record.name.utf8)
      let size = record.sparseSize ?? record.data.count
      let unpadded = offset + 30 + name.count + 4
      let padding = (64 - unpadded % 64) % 64
      var local = le(UInt32(0x0403_4B50)) + le(UInt16(20)) + le(record.flags) + le(record.method)
      local += le(UInt16(0)) + le(UInt16(0)) + le(UInt32(0)) + le(UInt32(0)) + le(UInt32(0))
      local += le(UInt16(name.count)) + le(UInt16(4 + padding)) + name
      local += le(UInt16(0x4246)) + le(UInt16(padding)) + [UInt8](repeating: 0x5A, count: padding)
      try handle.seek(toOffset: UInt64(offset))
      try handle.write(contentsOf: local + (record.sparseSize == nil ? record.data : []))
      central += le(UInt32(0x0201_4B50)) + le(UInt16(20)) + le(UInt16(20)) + le(record.flags) + le(record.method)
      central += le(UInt16(0)) + le(UInt16(0)) + le(UInt32(0)) + le(UInt32(size)) + le(UInt32(size))
      central += le(UInt16(name.count)) + le(UInt16(0)) + le(UInt16(0)) + le(UInt16(0)) + le(UInt16(0))
      central += le(UInt32(0)) + le(UInt32(offset)) + name
      offset += local.count + size
    }
    var tail = central
    tail += le(UInt32(0x0605_4B50)) + le(UInt16(0)) + le(UInt16(0)) + le(UInt16(records.count))
    tail += le(UInt16(records.count)) + le(UInt32(central.count)) + le(UInt32(offset)) + le(UInt16(0))
    try handle.seek(toOffset: UInt64(offset))
    try handle.write(contentsOf: tail)
  }

  /// Writes the archive into a new temporary directory and returns its path.
  func write(zip64: Bool = false, name: String = "model.pt") -> String {
    let url = temporaryDirectory().appendingPathComponent(name)
    try! Data(bytes(zip64: zip64)).write(to: url)
    return url.path
  }
}

/// The legacy format: magic, protocol 1001, sys_info, the data pickle, the storage keys, then
/// each storage as an 8-byte element count and its bytes.
func legacyCheckpoint(pickle: [UInt8], storages: [(key: String, count: Int, data: [UInt8])], littleEndian: Bool = true)
  -> [UInt8]
{
  var magic = PickleWriter()
  magic.op(0x8A, [10, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19])
  magic.stop()
  var version = PickleWriter()
  version.int(1001)
  version.stop()
  var info = PickleWriter()
  info.emptyDict()
  info.mark()
  info.string("protocol_version")
  info.int(1001)
  info.string("little_endian")
  info.bool(littleEndian)
  info.setItems()
  info.stop()
  var keys = PickleWriter()
  keys.emptyList()
  for storage in storages {
    keys.string(storage.key)
    keys.append()
  }
  keys.stop()
  var out = magic.bytes + version.bytes + info.bytes + pickle + keys.bytes
  for storage in storages { out += le(UInt64(storage.count)) + storage.data }
  return out
}

/// Writes `bytes` into a new temporary directory and returns the path.
func writeTemporary(_ bytes: [UInt8], name: String = "model.pt") -> String {
  let url = temporaryDirectory().appendingPathComponent(name)
  try! Data(bytes).write(to: url)
  return url.path
}
