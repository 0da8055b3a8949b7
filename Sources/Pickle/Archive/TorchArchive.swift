/// A torch.save file opened: which format it is in, the state-dict pickle run through the
/// symbolic machine, and where each storage's bytes are.
///
/// Only the container's directories and the pickles are read; storage data never is.
struct TorchArchive {
  var format: PickleCheckpointFile.Format
  /// The data pickle's value.
  var root: PickleValue
  /// The absolute offset where the data pickle starts.
  var rootOffset: Int
  /// The storages the pickle names, by key.
  var storages: [String: PickleStorage]

  /// The largest data pickle read (1 GiB; a checkpoint of 300 000 tensors needs about 60 MB).
  static let maximumPickleSize = 1 << 30

  /// Opens `file`: a torch.save zip archive (torch ≥ 1.6) or the legacy format.
  ///
  /// - Throws: ``PickleError`` naming the file: `tarFormat`, `unknownFormat`, the zip codes,
  ///   the pickle codes, `storageSize`, `bigEndian`, `io`.
  init(_ file: FileReader) throws(PickleError) {
    let head = try file.bytes(0..<min(file.size, 512))
    if head.count >= 262, head[257..<262].elementsEqual("ustar".utf8) {
      throw PickleError(
        .tarFormat, "a tar archive (torch.save before 0.4): this format is never read, since loading it can run code",
        file: file.path)
    }
    do throws(PickleError) {
      if head.starts(with: [0x50, 0x4B, 0x03, 0x04]) {
        try self.init(zip: file)
      } else if head.count >= 2, head[0] == 0x80, head[1] <= 5 {
        try self.init(legacy: file)
      } else {
        throw PickleError(.unknownFormat, "neither a torch.save zip archive nor a legacy torch.save pickle")
      }
    } catch {
      throw error.located(file: file.path)
    }
  }

  // MARK: - Zip

  private init(zip file: FileReader) throws(PickleError) {
    let directory = try ZipDirectory(file)
    guard let first = directory.entries.first, let slash = first.name.firstIndex(of: "/") else {
      throw PickleError(.zipFormat, "the archive has no top folder")
    }
    let prefix = String(first.name[...slash])
    var records: [String: Range<Int>] = [:]
    for entry in directory.entries {
      guard entry.name.hasPrefix(prefix), entry.name.count > prefix.count else {
        throw PickleError(
          .zipEntryName, "entry \"\(entry.name)\" is outside the single top folder \"\(prefix)\"",
          offset: entry.data.lowerBound)
      }
      let record = String(entry.name.dropFirst(prefix.count))
      if record == "constants.pkl" || record.hasPrefix("code/") {
        throw PickleError(.torchScript, "a TorchScript archive (it has \(entry.name)); only torch.save files are read")
      }
      records[record] = entry.data
    }
    if let byteOrder = records["byteorder"] {
      let text = try file.bytes(byteOrder.lowerBound..<min(byteOrder.upperBound, byteOrder.lowerBound + 16))
      if text.elementsEqual("big".utf8) {
        throw PickleError(.bigEndian, "a big-endian checkpoint (\(prefix)byteorder says big)")
      }
      guard text.elementsEqual("little".utf8) else {
        throw PickleError(
          .zipFormat, "\(prefix)byteorder is neither \"little\" nor \"big\"", offset: byteOrder.lowerBound)
      }
    }
    guard let pickleRange = records["data.pkl"] else { throw PickleError(.zipFormat, "no \(prefix)data.pkl") }
    guard pickleRange.count <= Self.maximumPickleSize else {
      throw PickleError(.zipFormat, "\(prefix)data.pkl is \(pickleRange.count) bytes, more than the 1 GiB read")
    }
    let pickle = try file.bytes(pickleRange)
    let result = try PickleMachine.run(pickle, base: pickleRange.lowerBound)
    guard result.end == pickle.count else {
      throw PickleError(
        .malformedPickle, "\(pickle.count - result.end) bytes after STOP in \(prefix)data.pkl",
        offset: pickleRange.lowerBound + result.end)
    }
    var storages: [String: PickleStorage] = [:]
    for reference in try Self.references(result.persistentIDs) {
      guard let range = records["data/\(reference.key)"] else {
        throw PickleError(.storageSize, "storage '\(reference.key)' has no record \(prefix)data/\(reference.key)")
      }
      guard range.count == reference.byteCount else {
        throw PickleError(
          .storageSize,
          "storage '\(reference.key)': the pickle declares \(reference.elementCount) × \(reference.elementType.rawValue) "
            + "= \(reference.byteCount) bytes, its record \(prefix)data/\(reference.key) has \(range.count)",
          offset: range.lowerBound)
      }
      storages[reference.key] = PickleStorage(
        key: reference.key, elementType: reference.elementType, elementCount: reference.elementCount, byteRange: range)
    }
    self.init(format: .zip, root: result.value, rootOffset: pickleRange.lowerBound, storages: storages)
  }

  /// The storages of `ids`, each key once; a key named twice must be named alike.
  private static func references(_ ids: [PickleTuple]) throws(PickleError) -> [StorageReference] {
    var seen: [String: StorageReference] = [:]
    var references: [StorageReference] = []
    for id in ids {
      let reference = try StorageReference(id)
      if let known = seen[reference.key] {
        guard known.elementType == reference.elementType, known.elementCount == reference.elementCount else {
          throw PickleError(.storageSize, "storage '\(reference.key)' is declared with two different types or sizes")
        }
      } else {
        seen[reference.key] = reference
        references.append(reference)
      }
    }
    return references
  }

  // MARK: - Legacy

  /// The legacy magic number, `0x1950A86A20F9469CFC6C`, as LONG1 writes it.
  private static let legacyMagic: [UInt8] = [0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]

  /// The legacy format: five pickles (magic, protocol version, sys_info, the object, the storage
  /// keys), then each storage as an 8-byte element count and its bytes.
  private init(legacy file: FileReader) throws(PickleError) {
    // The pickles come first and their length is not recorded: read a prefix, and a longer one
    // when the pickles run past it.
    var length = min(file.size, 1 << 20)
    while true {
      let prefix = try file.bytes(0..<length)
      do throws(PickleError) {
        try self.init(legacy: file, pickles: prefix)
        return
      } catch  where error.code == .malformedPickle && error.message.hasPrefix("truncated") && length < file.size {
        guard length < Self.maximumPickleSize else {
          throw PickleError(.malformedPickle, "the legacy pickles are longer than the 1 GiB read")
        }
        length = min(file.size, length * 4)
      }
    }
  }

  private init(legacy file: FileReader, pickles: [UInt8]) throws(PickleError) {
    let magic = try PickleMachine.run(pickles)
    guard case .bigInt(let bytes) = magic.value, bytes == Self.legacyMagic else {
      throw PickleError(.unknownFormat, "a pickle, but not a legacy torch.save file (no magic number)", offset: 0)
    }
    let version = try PickleMachine.run(pickles, from: magic.end)
    guard case .int(1001) = version.value else {
      throw PickleError(.unknownFormat, "legacy protocol version \(version.value.kind), not 1001", offset: magic.end)
    }
    let systemInfo = try PickleMachine.run(pickles, from: version.end)
    guard case .dict(let info) = systemInfo.value, case .bool(let little)? = info["little_endian"] else {
      throw PickleError(.malformedPickle, "the legacy sys_info is not a dict with little_endian", offset: version.end)
    }
    guard little else { throw PickleError(.bigEndian, "a big-endian checkpoint (sys_info little_endian is False)") }
    let data = try PickleMachine.run(pickles, from: systemInfo.end)
    let keysResult = try PickleMachine.run(pickles, from: data.end)
    guard case .list(let keyList) = keysResult.value else {
      throw PickleError(.malformedPickle, "the legacy storage key list is \(keysResult.value.kind)", offset: data.end)
    }
    var declared: [String: StorageReference] = [:]
    for reference in try Self.references(data.persistentIDs) { declared[reference.key] = reference }
    var position = keysResult.end
    var storages: [String: PickleStorage] = [:]
    for item in keyList.items {
      guard let key = item.string, let reference = declared[key] else {
        throw PickleError(.storageSize, "the legacy storage list names \(item.kind) that no tensor uses")
      }
      guard storages[key] == nil else {
        throw PickleError(.storageSize, "the legacy storage list names '\(key)' twice")
      }
      guard position <= file.size - 8 else {
        throw PickleError(.storageSize, "storage '\(key)' starts past the end of the file", offset: position)
      }
      let count = try file.bytes(position..<position + 8).u64(at: 0)
      guard count == UInt64(reference.elementCount) else {
        throw PickleError(
          .storageSize, "storage '\(key)': the pickle declares \(reference.elementCount) elements, the file \(count)",
          offset: position)
      }
      let start = position + 8
      guard reference.byteCount <= file.size - start else {
        throw PickleError(.storageSize, "storage '\(key)' runs past the end of the file", offset: start)
      }
      storages[key] = PickleStorage(
        key: key, elementType: reference.elementType, elementCount: reference.elementCount,
        byteRange: start..<start + reference.byteCount)
      position = start + reference.byteCount
    }
    if let missing = declared.keys.sorted().first(where: { storages[$0] == nil }) {
      throw PickleError(.storageSize, "storage '\(missing)' is not in the legacy storage list")
    }
    guard position == file.size else {
      throw PickleError(.storageSize, "\(file.size - position) bytes after the last storage", offset: position)
    }
    self.init(format: .legacy, root: data.value, rootOffset: systemInfo.end, storages: storages)
  }

  private init(
    format: PickleCheckpointFile.Format, root: PickleValue, rootOffset: Int, storages: [String: PickleStorage]
  ) {
    self.format = format
    self.root = root
    self.rootOffset = rootOffset
    self.storages = storages
  }
}
