import SafeTensors

/// The input bytes of one chunk of a quantized tensor, mapped from its file or read into a
/// buffer, with the reservation that counts them: both are freed together with this.
final class ChunkInput: Sendable {
  private let source: Source
  private let reservation: MemoryReservation

  private enum Source: Sendable {
    case mapped(MappedTensorBytes)
    case read(PieceBuffer)
  }

  init(_ mapped: MappedTensorBytes, reservation: consuming MemoryReservation) {
    source = .mapped(mapped)
    self.reservation = reservation
  }

  init(_ buffer: PieceBuffer, reservation: consuming MemoryReservation) {
    source = .read(buffer)
    self.reservation = reservation
  }

  /// The chunk's input bytes.
  var bytes: UnsafeRawBufferPointer {
    switch source {
    case .mapped(let mapped): mapped.bytes
    case .read(let buffer): UnsafeRawBufferPointer(buffer.bytes)
    }
  }

  /// Checks that the bytes were what the file held: a mapped file that shrank while it was read
  /// showed zeros for the pages it lost (``MappedTensorBytes/check()``).
  ///
  /// - Throws: ``PipelineError`` (`io`) naming the file and tensor.
  func check() throws(PipelineError) {
    guard case .mapped(let mapped) = source else { return }
    do {
      try mapped.check()
    } catch {
      throw PipelineError(.io, "\(error)", path: error.file, tensor: error.tensor, cause: error)
    }
  }
}
