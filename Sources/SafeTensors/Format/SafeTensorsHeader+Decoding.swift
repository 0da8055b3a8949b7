extension SafeTensorsHeader {
  /// Checks the 8-byte little-endian length that starts a file of `fileSize` bytes and returns
  /// the header's length.
  ///
  /// - Throws: `headerTooSmall` when the file is shorter than 8 bytes, `headerTooLarge` past
  ///   ``maximumSize`` (saying "not a safetensors file" when the 8 bytes are text), `headerLength` when the header would run past the end of the file.
  public static func headerLength(prefix: UInt64, fileSize: Int) throws(SafeTensorsError) -> Int {
    guard fileSize >= 8 else {
      throw SafeTensorsError(.headerTooSmall, "file is \(fileSize) bytes, shorter than the 8-byte header length")
    }
    guard prefix <= UInt64(maximumSize) else {
      // A text file (a symlink to /etc/passwd, a README) has printable bytes where the length
      // belongs; echoing them as a number only puzzles.
      let bytes = (0..<8).map { UInt8(truncatingIfNeeded: prefix >> (8 * $0)) }
      if bytes.allSatisfy({ (0x20...0x7E).contains($0) || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }) {
        throw SafeTensorsError(
          .headerTooLarge, "not a safetensors file: it starts with text where the 8-byte header length belongs")
      }
      throw SafeTensorsError(.headerTooLarge, "header length \(prefix) is over the limit of \(maximumSize) bytes")
    }
    let length = Int(prefix)
    guard length <= fileSize - 8 else {
      throw SafeTensorsError(
        .headerLength, "header length \(length) runs past the end of the file (\(fileSize - 8) bytes after the length)")
    }
    return length
  }

  /// Decodes a whole file held in memory, with every check the reference makes.
  public static func decode(file: UnsafeRawBufferPointer) throws(SafeTensorsError) -> SafeTensorsHeader {
    let prefix = file.count >= 8 ? file.loadUnaligned(as: UInt64.self).littleEndian : 0
    let length = try headerLength(prefix: prefix, fileSize: file.count)
    let header = try decode(json: UnsafeRawBufferPointer(rebasing: file[8..<8 + length]))
    try header.checkDataLength(file.count - 8 - length)
    return header
  }

  /// Checks that the tensors' data ends exactly at the end of a data section of `available`
  /// bytes.
  ///
  /// - Throws: `incompleteBuffer` when there are bytes missing or left over.
  public func checkDataLength(_ available: Int) throws(SafeTensorsError) {
    guard dataLength == available else {
      throw SafeTensorsError(
        .incompleteBuffer,
        "tensor data ends at byte \(dataLength) of the data section, but the file has \(available) data bytes")
    }
  }

  /// Decodes and validates the header text: the bytes after the length prefix, padding
  /// included.
  ///
  /// Applies the reference reader's rules: UTF-8, a JSON object (surrounding whitespace allowed,
  /// as serde_json allows it), bounded nesting, `__metadata__` of strings, every entry with a
  /// known dtype, a shape of non-negative integers and `data_offsets` matching the shape's byte
  /// size without overflow, and the entries' ranges contiguous from 0. Stricter than the
  /// reference in one way: a duplicate key is an error (the reference keeps the last). The data length is checked by the caller
  /// (``checkDataLength(_:)``), which knows the file size.
  public static func decode(json bytes: UnsafeRawBufferPointer) throws(SafeTensorsError) -> SafeTensorsHeader {
    try decode(json: bytes, metadataCache: nil)
  }

  /// ``decode(json:)``, reusing what `metadataCache` holds when this header's `__metadata__`
  /// text is the one decoded last.
  static func decode(json bytes: UnsafeRawBufferPointer, metadataCache: HeaderScan.MetadataCache?)
    throws(SafeTensorsError) -> SafeTensorsHeader
  {
    let scan: HeaderScan?
    do {
      scan = try HeaderScan.scan(bytes, metadataCache: metadataCache)
    } catch {
      let code: SafeTensorsError.Code =
        switch error.kind {
        case .encoding: .headerEncoding
        case .syntax: .headerSyntax
        case .depth: .headerDepth
        case .duplicateKey: .duplicateKey
        }
      throw SafeTensorsError(code, "header is not valid JSON: \(error)")
    }
    guard let scan else { throw SafeTensorsError(.headerNotObject, "header is not a JSON object") }

    var metadata: [String: String]?
    var tensors: [TensorInfo] = []
    tensors.reserveCapacity(scan.positions.count)
    for member in scan.members {
      switch member {
      case .tensor(let tensor): tensors.append(tensor)
      case .entry(let name, let value): tensors.append(try decodeEntry(name: name, value))
      case .metadata(let decoded): metadata = decoded
      case .otherMetadata(let value): metadata = try decodeMetadata(value)
      }
    }
    // Files are usually written in data order; the positions the scan took then stay right.
    let inDataOrder = zip(tensors, tensors.dropFirst()).allSatisfy { !Self.dataOrder($1, $0) }
    if !inDataOrder { tensors.sort(by: Self.dataOrder) }
    var end = 0
    for tensor in tensors {
      guard tensor.dataOffsets.lowerBound == end else {
        let problem =
          tensor.dataOffsets.lowerBound < end ? "overlaps the tensor before it" : "leaves a gap after byte \(end)"
        throw SafeTensorsError(
          .offsetsNotContiguous,
          "data_offsets [\(tensor.dataOffsets.lowerBound), \(tensor.dataOffsets.upperBound)] \(problem)",
          tensor: tensor.name)
      }
      end = tensor.dataOffsets.upperBound
    }
    guard inDataOrder else { return try SafeTensorsHeader(metadata: metadata, orderedTensors: tensors) }
    return SafeTensorsHeader(metadata: metadata, orderedTensors: tensors, positions: scan.positions)
  }

  /// Whether `left` comes before `right` in data order (by start, then end).
  private static func dataOrder(_ left: TensorInfo, _ right: TensorInfo) -> Bool {
    (left.dataOffsets.lowerBound, left.dataOffsets.upperBound) < (
      right.dataOffsets.lowerBound, right.dataOffsets.upperBound
    )
  }

  static func decodeMetadata(_ value: JSONValue) throws(SafeTensorsError) -> [String: String] {
    guard let members = value.members else {
      throw SafeTensorsError(.metadataNotStrings, "__metadata__ is not an object")
    }
    var metadata: [String: String] = [:]
    for member in members {
      guard let text = member.value.string else {
        throw SafeTensorsError(.metadataNotStrings, "__metadata__ value of \"\(member.key)\" is not a string")
      }
      metadata[member.key] = text
    }
    return metadata
  }

  static func decodeEntry(name: String, _ value: JSONValue) throws(SafeTensorsError) -> TensorInfo {
    guard value.members != nil else { throw SafeTensorsError(.tensorEntry, "entry is not an object", tensor: name) }
    guard let dtypeValue = value["dtype"], let shapeValue = value["shape"], let offsetsValue = value["data_offsets"]
    else {
      throw SafeTensorsError(.tensorEntry, "entry lacks one of dtype, shape, data_offsets", tensor: name)
    }
    guard let dtypeName = dtypeValue.string else {
      throw SafeTensorsError(.unknownDType, "dtype is not a string", tensor: name)
    }
    guard let dtype = DType(rawValue: dtypeName) else {
      throw SafeTensorsError(.unknownDType, "unknown dtype \"\(dtypeName)\"", tensor: name)
    }
    guard let dimensions = shapeValue.array else {
      throw SafeTensorsError(.invalidShape, "shape is not an array", tensor: name)
    }
    var shape: [UInt64] = []
    shape.reserveCapacity(dimensions.count)
    for dimension in dimensions {
      guard let size = dimension.uint64 else {
        throw SafeTensorsError(
          .invalidShape, "shape \(JSONWriter.string(shapeValue)) is not all non-negative integers", tensor: name)
      }
      shape.append(size)
    }
    guard let offsets = offsetsValue.array, offsets.count == 2 else {
      throw SafeTensorsError(.invalidOffsets, "data_offsets is not a pair of integers", tensor: name)
    }
    guard let start = offsets[0].uint64, let end = offsets[1].uint64 else {
      throw SafeTensorsError(
        .invalidOffsets, "data_offsets \(JSONWriter.string(offsetsValue)) are not non-negative integers", tensor: name)
    }
    guard start <= end else {
      throw SafeTensorsError(.invalidOffsets, "data_offsets [\(start), \(end)] end before they start", tensor: name)
    }
    guard shape.allSatisfy({ $0 <= UInt64(Int.max) }), end <= UInt64(Int.max) else {
      throw SafeTensorsError(
        .sizeOverflow, "shape \(shape) or data_offsets [\(start), \(end)] overflow 64-bit sizes", tensor: name)
    }
    let bytes = try dataByteCount(dtype, shape, tensor: name)
    guard bytes == end - start else {
      throw SafeTensorsError(
        .sizeMismatch,
        "\(dtype.rawValue) \(shape) takes \(bytes) bytes but data_offsets [\(start), \(end)] hold \(end - start)",
        tensor: name)
    }
    return TensorInfo(name: name, dtype: dtype, shape: shape.map { Int($0) }, dataOffsets: Int(start)..<Int(end))
  }
}
