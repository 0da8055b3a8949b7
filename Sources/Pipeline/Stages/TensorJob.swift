import AsyncAlgorithms
import Quantization
import SafeTensors
import TorchAO

/// The work for one entry of the plan: copy an input tensor, or quantize one (or the input
/// tensors that fuse into one parameter) chunk by chunk, sending every output byte to its shard
/// as a ``Piece``.
struct TensorJob: Sendable {
  let entry: ConversionPlan.Entry
  /// Where the entry's stored tensors go, in the order of its `flattened.stored`.
  let placements: [ConversionPlan.Placement]
  /// The header length of each shard: where its data section starts in the file.
  let headerLengths: [Int]
  /// The checkpoint's files, which ``ConversionPlan/Input/file`` indexes.
  let files: [SafeTensorsFile]
  let budget: MemoryBudget
  let channel: AsyncChannel<Piece>
  let share: MemoryShare
  /// Where each shard starts in this run: what it still needs.
  let starts: [ShardStart]
  let progress: @Sendable (ProgressEvent) -> Void

  /// Copies or quantizes the tensor.
  ///
  /// - Throws: ``PipelineError`` (a scheme's refusal of the tensor's values as `invalidInput`,
  ///   naming the tensor), or `CancellationError`.
  func run() async throws {
    do {
      if let config = entry.config, let format = entry.format, let layout = entry.layout {
        let chunking = ChunkPlan(
          entry: entry, layout: layout, format: format, chunkBytes: share.chunkBytes, files: files)
        try await quantize(config.scheme(source: format), chunking: chunking)
      } else {
        try await copy()
      }
    } catch let error as QuantizationError {
      let path = files[entry.inputs[0].file].path
      throw PipelineError(
        .invalidInput, "\(path): tensor '\(entry.source.name)': \(error)", path: path, tensor: entry.source.name,
        cause: error)
    }
  }

  /// Copies the tensor's bytes in chunks, each mapped from its file or read into the buffer that
  /// is sent, and warns when a floating-point tensor holds NaN or infinity.
  private func copy() async throws {
    let placement = try place(nil)
    let format = FloatFormat(rawValue: entry.source.dtype.rawValue)
    let nonFinite = Locked(0)
    let width = max(1, entry.source.dtype.bitSize / 8)
    let chunk = MemoryShare.copyChunkBytes(entry, chunkBytes: share.chunkBytes)
    let scratchBytes = MemoryShare.readScratchBytes(entry, count: chunk, files: files)
    let mapped = MemoryShare.mapsInput(entry, count: chunk, files: files)
    let ranges = stride(from: 0, to: entry.source.byteCount, by: chunk).map {
      $0..<min($0 + chunk, entry.source.byteCount)
    }
    try await forEachConcurrently(ranges) { range in
      let buffer = try await input(
        at: range.lowerBound, count: range.count, mapped: mapped, scratchBytes: scratchBytes,
        reservation: budget.reserve(buffers: PieceBuffer.inputFootprint(range.count, mapped: mapped) + scratchBytes))
      if let format {
        let count = ScaleFindings.nonFiniteCount(UnsafeRawBufferPointer(buffer.bytes), format)
        nonFinite.withLock { $0 += count }
      }
      await send(
        Piece(
          shard: placement.shard, offset: placement.tensor.dataOffsets.lowerBound + range.lowerBound, buffer: buffer,
          elementWidth: width))
    }
    if let message = ValueWarnings.message(copiedNonFinite: nonFinite.value) {
      progress(.warning(tensor: entry.source.name, message: message))
    }
  }

  /// Quantizes the tensor: the statistic pass when the scheme has one, then row chunks, then
  /// the parts that belong to the whole tensor.
  private func quantize(_ scheme: any QuantizationScheme, chunking: ChunkPlan) async throws {
    let shape = entry.source.shape
    let layout = chunking.layout
    let chunks = chunking.chunks

    var statistic = try scheme.makeStatistic(shape: shape)
    // The merged statistic, held until the tensor is done.
    let statisticReservation = try await budget.reserve(chunking.statisticBytes)
    defer { withExtendedLifetime(statisticReservation) {} }
    if let empty = statistic {
      let total = Locked(empty)
      try await forEachConcurrently(chunks) { rows in
        // The input, and the copy of the statistic the chunk gathers into.
        var reservation = try await budget.reserve(buffers: chunking.statisticChunkBytes(rows))
        let input = try await input(rows, chunking: chunking, reservation: reservation.split(chunking.inputBytes(rows)))
        // The rest holds the statistic's copy, not a buffer.
        reservation.unmapSpares()
        var partial = empty
        try input.checking { try partial.accumulate(UnsafeRawBufferPointer(input.bytes), firstRow: rows.lowerBound) }
        try total.withLock { try $0.merge(partial) }
      }
      statistic = total.value
    }
    let finalStatistic = statistic

    let gatheredParts = layout.parts.filter { $0.placement == .gathered }
    var gathered: [PartName: PieceBuffer] = [:]
    var gatheredReservation = try await budget.reserve(
      buffers: gatheredParts.reduce(0) { $0 + PieceBuffer.footprint($1.byteCount) })
    for part in gatheredParts {
      let buffer = PieceBuffer(
        count: part.byteCount, reservation: gatheredReservation.split(PieceBuffer.footprint(part.byteCount)))
      buffer.bytes.initializeMemory(as: UInt8.self, repeating: 0)
      gathered[part.name] = buffer
    }
    let sharedGathered = gathered
    let rowParts = chunking.rowParts
    let placements = try Dictionary(uniqueKeysWithValues: layout.parts.map { ($0.name, try place($0.name)) })
    let findings = Locked(ScaleFindings())

    try await forEachConcurrently(chunks) { rows in
      // One request for the whole chunk (input and pieces), so that a job never holds part of
      // its bytes while it waits for the rest.
      var reservation = try await budget.reserve(buffers: chunking.chunkBytes(rows))
      var pieces: [Piece] = []
      do {
        // The input is freed, and its bytes returned, at the end of this block: before the
        // pieces wait for the channel.
        let input = try await input(rows, chunking: chunking, reservation: reservation.split(chunking.inputBytes(rows)))
        var outputs: [PartName: UnsafeMutableRawBufferPointer] = [:]
        for part in rowParts {
          let range = part.byteRange(rows: rows)
          let placement = placements[part.name]!
          let offset = placement.tensor.dataOffsets.lowerBound + range.lowerBound
          // Laid out for the file offset it goes to, so the shard writer can write it where it is.
          let buffer = PieceBuffer(
            count: range.count, reservation: reservation.split(PieceBuffer.footprint(range.count)),
            fileOffset: headerLengths[placement.shard] + offset)
          outputs[part.name] = buffer.bytes
          pieces.append(
            Piece(shard: placement.shard, offset: offset, buffer: buffer, elementWidth: part.elementType.byteWidth))
        }
        for (name, buffer) in sharedGathered { outputs[name] = buffer.bytes }
        var found = ScaleFindings()
        try input.checking {
          try scheme.quantize(
            UnsafeRawBufferPointer(input.bytes), shape: shape, rows: rows, statistic: finalStatistic, into: outputs)
          if scheme.scalesShowNonFiniteInput {
            found.scan(outputs, layout: layout, rows: rows)
          } else {
            // These schemes' chunk scales show nothing but NaN and infinity, and not all of them.
            found.scan(input: UnsafeRawBufferPointer(input.bytes), format: scheme.source, rows: rows)
          }
        }
        findings.withLock { $0.merge(found) }
      }
      precondition(reservation.bytes == 0, "ChunkPlan.chunkBytes and the chunk's buffers disagree")
      for piece in pieces { await send(piece) }
    }

    for (name, bytes) in try scheme.tensorParts(shape: shape, statistic: finalStatistic) {
      if let part = layout.part(name) {
        bytes.withUnsafeBytes { raw in findings.withLock { $0.scan(part: part, bytes: raw) } }
      }
      let buffer = PieceBuffer(
        count: bytes.count, reservation: try await budget.reserve(buffers: PieceBuffer.footprint(bytes.count)))
      bytes.withUnsafeBytes { buffer.bytes.copyMemory(from: $0) }
      let placement = placements[name]!
      let width = layout.part(name)?.elementType.byteWidth ?? 1
      await send(
        Piece(
          shard: placement.shard, offset: placement.tensor.dataOffsets.lowerBound, buffer: buffer, elementWidth: width))
    }
    for part in gatheredParts {
      findings.withLock { $0.scan(part: part, bytes: UnsafeRawBufferPointer(gathered[part.name]!.bytes)) }
      let placement = placements[part.name]!
      await send(
        Piece(
          shard: placement.shard, offset: placement.tensor.dataOffsets.lowerBound, buffer: gathered[part.name]!,
          elementWidth: part.elementType.byteWidth))
    }
    for message in ValueWarnings.messages(findings.value, rowCount: layout.rowCount) {
      progress(.warning(tensor: entry.source.name, message: message))
    }
  }

  /// Sends a piece to the writers. An empty one, or one whose bytes this run does not write
  /// (another worker's shard, a finished shard, bytes a resumed shard has already), is dropped
  /// (its buffer, and so its reservation, goes with it).
  private func send(_ piece: Piece) async {
    guard piece.count > 0, starts[piece.shard].needs(piece.offset..<piece.offset + piece.count) else { return }
    await channel.send(piece)
  }

  /// Where the entry's stored tensor of `part` goes (`nil`: the tensor of a copied entry).
  private func place(_ part: PartName?) throws -> ConversionPlan.Placement {
    guard let index = entry.flattened.stored.firstIndex(where: { $0.part == part }) else {
      let name = part.map { FlattenedName.name(parameter: entry.source.name, part: $0.rawValue) } ?? entry.source.name
      throw PipelineError(.invalidInput, "the plan has no place for '\(name)'")
    }
    return placements[index]
  }

  /// The input of the chunk of `rows`, held by `reservation` (``ChunkPlan/inputBytes(_:)``).
  private func input(
    _ rows: Range<Int>, chunking: ChunkPlan, reservation: consuming MemoryReservation
  ) async throws(PipelineError) -> PieceBuffer {
    try await input(
      at: rows.lowerBound * chunking.rowBytes, count: rows.count * chunking.rowBytes, mapped: chunking.mapsInput,
      scratchBytes: chunking.readScratchBytes, reservation: reservation)
  }

  /// The `count` bytes of the entry from `offset`, held by `reservation`
  /// (``PieceBuffer/inputFootprint(_:mapped:)`` and the read's `scratchBytes`): mapped from their
  /// file where `mapped` (``MemoryShare/mapsInput(_:count:files:)``) and a mapping is had, else
  /// read into a buffer. Whoever uses mapped bytes calls ``PieceBuffer/check()`` after.
  private func input(
    at offset: Int, count: Int, mapped: Bool, scratchBytes: Int, reservation: consuming MemoryReservation
  ) async throws(PipelineError) -> PieceBuffer {
    if mapped {
      let (file, tensor) = (files[entry.inputs[0].file], entry.inputs[0].tensor)
      // Mapping loads the pages, which may wait for the disk.
      let bytes = try await BlockingIOExecutor.shared.execute { () throws(PipelineError) in
        let bytes: MappedTensorBytes?
        do {
          bytes = try file.map(tensor, at: offset, count: count)
        } catch {
          throw PipelineError(.io, "\(error)", path: file.path, tensor: tensor.name, cause: error)
        }
        if bytes != nil { FaultInjection.reach("mapped:\(tensor.name):\(offset)") }
        return bytes
      }
      if let bytes { return PieceBuffer(mapped: bytes, reservation: reservation) }
    }
    let buffer = PieceBuffer(count: count, reservation: reservation.split(PieceBuffer.footprint(count)))
    try await read(at: offset, into: buffer, scratch: reservation.split(scratchBytes))
    return buffer
  }

  /// Reads the entry's bytes from `offset` into `buffer`, from the input tensors that hold them
  /// (several, for fused experts), on a thread of ``BlockingIOExecutor/shared``; a presented
  /// input works in a buffer of the reserved `scratch` (``ChunkPlan/readScratchBytes``), freed
  /// when the read is done.
  private func read(
    at offset: Int, into buffer: PieceBuffer, scratch: consuming MemoryReservation
  ) async throws(PipelineError) {
    let (files, inputs) = (files, entry.inputs)
    let scratch = scratch.bytes == 0 ? nil : PieceBuffer(count: scratch.bytes, reservation: scratch)
    try await BlockingIOExecutor.shared.execute { () throws(PipelineError) in
      var region = ReadScratch(scratch?.bytes ?? UnsafeMutableRawBufferPointer(start: nil, count: 0))
      var start = 0
      var filled = 0
      for input in inputs {
        let range = start..<start + input.tensor.byteCount
        start = range.upperBound
        let wanted = range.clamped(to: offset..<offset + buffer.bytes.count)
        guard !wanted.isEmpty else { continue }
        filled += wanted.count
        let file = files[input.file]
        do {
          try file.read(
            input.tensor, at: wanted.lowerBound - range.lowerBound,
            into: UnsafeMutableRawBufferPointer(
              rebasing: buffer.bytes[wanted.lowerBound - offset..<wanted.upperBound - offset]),
            scratch: &region)
        } catch {
          throw PipelineError(.io, "\(error)", path: file.path, tensor: input.tensor.name, cause: error)
        }
      }
      // The buffer may be a reused mapping that still holds another chunk's bytes.
      assert(filled == buffer.bytes.count, "read \(filled) of a buffer's \(buffer.bytes.count) bytes")
    }
  }

  /// Runs `body` for every item, `share.workers` at a time; the first error cancels the rest.
  private func forEachConcurrently<Item: Sendable>(
    _ items: [Item], _ body: @escaping @Sendable (Item) async throws -> Void
  ) async throws {
    let next = Locked(0)
    try await withThrowingDiscardingTaskGroup { group in
      for _ in 0..<min(share.workers, items.count) {
        group.addTask {
          while true {
            let index = next.withLock { index in
              defer { index += 1 }
              return index
            }
            guard index < items.count else { return }
            try Task.checkCancellation()
            try await body(items[index])
          }
        }
      }
    }
  }
}
