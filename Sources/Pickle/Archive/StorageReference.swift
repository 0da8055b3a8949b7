import SafeTensors

/// What a persistent id says about a storage: `('storage', type, key, location, numel)`, plus a
/// sixth item `view_metadata` (which must be `None`) in the legacy format.
struct StorageReference {
  var key: String
  var elementType: DType
  var elementCount: Int

  /// The storage's size in bytes (checked not to overflow when the reference was read).
  var byteCount: Int { elementCount * (elementType.bitSize / 8) }

  /// Reads a persistent id.
  ///
  /// - Throws: `malformedPickle` for a wrong shape, `unsupportedTensor` for legacy storage
  ///   views, `storageSize` for a count that is negative or overflows.
  init(_ id: PickleTuple) throws(PickleError) {
    var items = id.items
    if items.count == 6 {
      guard case .none = items[5] else {
        throw PickleError(.unsupportedTensor, "legacy storage views (view_metadata) are not supported")
      }
      items.removeLast()
    }
    guard items.count == 5 else {
      throw PickleError(.malformedPickle, "a storage persistent id has \(id.items.count) items, not 5")
    }
    guard let type = items[1].global else {
      throw PickleError(.malformedPickle, "the storage type is \(items[1].kind), not a global")
    }
    if type.module == "torch.storage" && type.name == "UntypedStorage" {
      elementType = .u8
    } else if let dtype = PickleGlobals.storageTypes[type.name], type.module == "torch" || type.module == "torch.cuda" {
      elementType = dtype
    } else {
      throw PickleError(.unsupportedTensor, "storage type \(type) is not supported")
    }
    guard let key = items[2].string else {
      throw PickleError(.malformedPickle, "the storage key is \(items[2].kind), not a string")
    }
    guard items[3].string != nil else {
      throw PickleError(.malformedPickle, "the storage location is \(items[3].kind), not a string")
    }
    guard case .int(let count) = items[4], count >= 0,
      !Int(count).multipliedReportingOverflow(by: elementType.bitSize / 8).overflow
    else {
      throw PickleError(.storageSize, "storage '\(key)' declares \(items[4].kind) elements, not a valid count")
    }
    self.key = key
    self.elementCount = Int(count)
  }
}
