/// The entries of a zip file whose entries are all stored (method 0), read from its central
/// directory, zip64 included; the data offset of each entry comes from its local header.
///
/// torch.save writes local headers with zero sizes and a data descriptor after the data, and
/// pads the local extra field so that data starts on a multiple of 64; only the central
/// directory has the sizes, and only the local header gives where the data starts.
struct ZipDirectory {
  /// One entry: its name and the absolute byte range of its data.
  struct Entry {
    var name: String
    var data: Range<Int>
  }

  /// The entries in central-directory order.
  var entries: [Entry]

  /// The longest central directory read (32 MiB: 300 000 entries of torch's names).
  static let maximumDirectorySize = 32 << 20

  /// Reads the directory of `file`.
  ///
  /// - Throws: `zipFormat` for a malformed container, `zipEntry` for an encrypted, compressed or
  ///   multi-disk entry, `zipEntryName` for an unsafe or repeated name, `io` when a read fails.
  init(_ file: FileReader) throws(PickleError) {
    let path = file.path
    func fail(_ message: String, offset: Int? = nil) -> PickleError {
      PickleError(.zipFormat, message, file: path, offset: offset)
    }
    guard file.size >= 22 else { throw fail("too short for a zip end-of-central-directory record") }
    let tailStart = max(0, file.size - 22 - 0xFFFF)
    let tail = try file.bytes(tailStart..<file.size)
    var eocd: Int?
    var index = tail.count - 22
    while index >= 0 {
      if tail.u32(at: index) == 0x0605_4B50, index + 22 + Int(tail.u16(at: index + 20)) == tail.count {
        eocd = index
        break
      }
      index -= 1
    }
    guard let eocd else { throw fail("no end-of-central-directory record") }
    var entryCount = Int(tail.u16(at: eocd + 10))
    var directorySize = Int(tail.u32(at: eocd + 12))
    var directoryOffset = Int(tail.u32(at: eocd + 16))
    guard tail.u16(at: eocd + 4) == 0, tail.u16(at: eocd + 6) == 0, Int(tail.u16(at: eocd + 8)) == entryCount else {
      throw PickleError(.zipEntry, "a zip spanning several disks", file: path, offset: tailStart + eocd)
    }
    let locator = eocd - 20
    if locator >= 0, tail.u32(at: locator) == 0x0706_4B50 {
      guard tail.u32(at: locator + 4) == 0, tail.u32(at: locator + 16) == 1 else {
        throw PickleError(.zipEntry, "a zip64 archive spanning several disks", file: path, offset: tailStart + locator)
      }
      guard let recordOffset = Int(exactly: tail.u64(at: locator + 8)), recordOffset <= file.size - 56 else {
        throw fail("the zip64 end-of-central-directory record is outside the file", offset: tailStart + locator)
      }
      let record = try file.bytes(recordOffset..<recordOffset + 56)
      guard record.u32(at: 0) == 0x0606_4B50 else {
        throw fail("no zip64 end-of-central-directory record where the locator points", offset: recordOffset)
      }
      guard record.u32(at: 16) == 0, record.u32(at: 20) == 0, record.u64(at: 24) == record.u64(at: 32) else {
        throw PickleError(.zipEntry, "a zip64 archive spanning several disks", file: path, offset: recordOffset)
      }
      guard let count = Int(exactly: record.u64(at: 32)), let size = Int(exactly: record.u64(at: 40)),
        let offset = Int(exactly: record.u64(at: 48))
      else { throw fail("zip64 directory fields do not fit 64-bit signed integers", offset: recordOffset) }
      (entryCount, directorySize, directoryOffset) = (count, size, offset)
    } else if entryCount == 0xFFFF || directorySize == 0xFFFF_FFFF || directoryOffset == 0xFFFF_FFFF {
      throw fail("the end record defers to a zip64 record that is missing", offset: tailStart + eocd)
    }
    guard directorySize <= Self.maximumDirectorySize, directoryOffset <= file.size,
      directorySize <= file.size - directoryOffset
    else {
      throw fail(
        "the central directory (\(directorySize) bytes at \(directoryOffset)) is outside the file or too large")
    }
    // Each central header is at least 46 bytes: a count larger than that allows is a lie.
    guard entryCount <= directorySize / 46 else {
      throw fail("\(entryCount) entries cannot fit a central directory of \(directorySize) bytes")
    }
    let directory = try file.bytes(directoryOffset..<directoryOffset + directorySize)
    var central: [Central] = []
    central.reserveCapacity(entryCount)
    var entries: [Entry] = []
    entries.reserveCapacity(entryCount)
    var names = Set<String>()
    var position = 0
    for _ in 0..<entryCount {
      let at = directoryOffset + position
      guard position + 46 <= directory.count, directory.u32(at: position) == 0x0201_4B50 else {
        throw fail("bad central directory header", offset: at)
      }
      let flags = directory.u16(at: position + 8)
      let method = directory.u16(at: position + 10)
      var compressedSize = UInt64(directory.u32(at: position + 20))
      var size = UInt64(directory.u32(at: position + 24))
      let nameLength = Int(directory.u16(at: position + 28))
      let extraLength = Int(directory.u16(at: position + 30))
      let commentLength = Int(directory.u16(at: position + 32))
      let disk = directory.u16(at: position + 34)
      var localOffset = UInt64(directory.u32(at: position + 42))
      let end = position + 46 + nameLength + extraLength + commentLength
      guard end <= directory.count else { throw fail("central directory header runs past the directory", offset: at) }
      guard let name = String(validating: directory[position + 46..<position + 46 + nameLength], as: UTF8.self) else {
        throw PickleError(.zipEntryName, "an entry name is not UTF-8", file: path, offset: at)
      }
      // zip64 extra field 0x0001: the 64-bit values of the fields saturated above, in order.
      var extra = position + 46 + nameLength
      let extraEnd = extra + extraLength
      while extra + 4 <= extraEnd {
        let id = directory.u16(at: extra)
        let length = Int(directory.u16(at: extra + 2))
        guard extra + 4 + length <= extraEnd else {
          throw fail("\(name): extra field runs past its header", offset: at)
        }
        if id == 0x0001 {
          var field = extra + 4
          if size == 0xFFFF_FFFF {
            guard field + 8 <= extra + 4 + length else { throw fail("\(name): short zip64 extra field", offset: at) }
            size = directory.u64(at: field)
            field += 8
          }
          if compressedSize == 0xFFFF_FFFF {
            guard field + 8 <= extra + 4 + length else { throw fail("\(name): short zip64 extra field", offset: at) }
            compressedSize = directory.u64(at: field)
            field += 8
          }
          if localOffset == 0xFFFF_FFFF {
            guard field + 8 <= extra + 4 + length else { throw fail("\(name): short zip64 extra field", offset: at) }
            localOffset = directory.u64(at: field)
            field += 8
          }
        }
        extra += 4 + length
      }
      central.append(
        Central(
          name: name, flags: flags, method: method, compressedSize: compressedSize, size: size, disk: disk,
          localOffset: localOffset, at: at))
      position = end
    }
    // A TorchScript archive is named as such, whatever else is wrong with it.
    if let marker = central.first(where: { Self.isTorchScriptMarker($0.name) }) {
      throw PickleError(
        .torchScript, "a TorchScript archive (it has \(marker.name)); only torch.save files are read", file: path)
    }
    for entry in central {
      let (name, flags, method, at) = (entry.name, entry.flags, entry.method, entry.at)
      let (compressedSize, size, disk, localOffset) = (entry.compressedSize, entry.size, entry.disk, entry.localOffset)
      if flags & 0x41 != 0 { throw PickleError(.zipEntry, "\(name): encrypted entry", file: path, offset: at) }
      guard method == 0 else {
        throw PickleError(
          .zipEntry, "\(name): compressed entry (method \(method)); torch.save stores entries uncompressed", file: path,
          offset: at)
      }
      guard disk == 0 else { throw PickleError(.zipEntry, "\(name): entry on another disk", file: path, offset: at) }
      guard compressedSize == size else {
        throw PickleError(.zipEntry, "\(name): stored entry whose sizes differ", file: path, offset: at)
      }
      if let problem = Self.unsafeNameProblem(name) {
        throw PickleError(.zipEntryName, "entry name \"\(name)\" \(problem)", file: path, offset: at)
      }
      guard names.insert(name).inserted else {
        throw PickleError(.zipEntryName, "entry name \"\(name)\" occurs twice", file: path, offset: at)
      }
      guard let local = Int(exactly: localOffset), let length = Int(exactly: size), local <= file.size - 30 else {
        throw fail("\(name): local header outside the file", offset: at)
      }
      let header = try file.bytes(local..<local + 30)
      guard header.u32(at: 0) == 0x0403_4B50 else {
        throw fail("\(name): no local header where it should be", offset: local)
      }
      let dataStart = local + 30 + Int(header.u16(at: 26)) + Int(header.u16(at: 28))
      guard dataStart <= file.size, length <= file.size - dataStart else {
        throw fail("\(name): data (\(length) bytes at \(dataStart)) runs past the end of the file", offset: local)
      }
      let localName = try file.bytes(local + 30..<local + 30 + Int(header.u16(at: 26)))
      guard localName.elementsEqual(name.utf8) else {
        throw PickleError(.zipEntryName, "\(name): the local header names another entry", file: path, offset: local)
      }
      entries.append(Entry(name: name, data: dataStart..<dataStart + length))
    }
    self.entries = entries
  }

  /// A central directory header's fields.
  private struct Central {
    var name: String
    var flags: UInt16
    var method: UInt16
    var compressedSize: UInt64
    var size: UInt64
    var disk: UInt16
    var localOffset: UInt64
    /// Where the header is.
    var at: Int
  }

  /// Whether `name` is a record only TorchScript archives have (`<top>/constants.pkl`,
  /// `<top>/code/…`).
  static func isTorchScriptMarker(_ name: String) -> Bool {
    let components = name.split(separator: "/", maxSplits: 1)
    return components.count == 2 && (components[1] == "constants.pkl" || components[1].hasPrefix("code/"))
  }

  /// Why `name` is not a safe relative entry name, or `nil`.
  static func unsafeNameProblem(_ name: String) -> String? {
    if name.isEmpty { return "is empty" }
    if name.hasPrefix("/") { return "is an absolute path" }
    if name.contains("\\") { return "has a backslash" }
    if name.utf8.contains(0) { return "contains a NUL byte" }
    let components = name.split(separator: "/", omittingEmptySubsequences: false)
    if components.contains(where: { $0 == ".." }) { return "has a \"..\" component" }
    if components.contains(where: { $0 == "." }) { return "has a \".\" component" }
    if components.dropLast().contains(where: \.isEmpty) { return "has an empty component" }
    if components.first?.contains(":") == true { return "has a drive or scheme prefix" }
    return nil
  }
}

extension [UInt8] {
  /// The little-endian integer at `offset` (the caller has checked the bounds).
  func u16(at offset: Int) -> UInt16 { UInt16(self[offset]) | UInt16(self[offset + 1]) << 8 }
  func u32(at offset: Int) -> UInt32 { UInt32(u16(at: offset)) | UInt32(u16(at: offset + 2)) << 16 }
  func u64(at offset: Int) -> UInt64 { UInt64(u32(at: offset)) | UInt64(u32(at: offset + 4)) << 32 }
}
