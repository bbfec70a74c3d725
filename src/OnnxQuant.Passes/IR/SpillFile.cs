using Microsoft.Win32.SafeHandles;

namespace OnnxQuant.IR;

/// <summary>
/// A nameless scratch file for tensors a pass produces, so a pass over a multi-GB model holds one tensor in memory at a
/// time instead of every rewritten weight until the save. It has no name on disk (created with <c>O_TMPFILE</c> on
/// Linux, unlinked right after creation elsewhere), so it never shows up as a leftover even if the process is killed.
/// Tensors start at multiples of <see cref="Alignment"/>, the data file's alignment, so when every byte in it is still
/// a live initializer the save can make this file the output's data file as it is (<see cref="TryBecome"/>) instead
/// of copying it. Such a file is written around the page cache on a thread of its own (<see cref="DirectWriter"/>)
/// where the file system allows.
/// </summary>
public sealed class SpillFile : IDisposable
{
    /// <summary>Where each tensor starts: the alignment <see cref="IO.SaveOptions"/> gives tensors in a data file by default.</summary>
    public const int Alignment = 4096;

    private readonly SafeFileHandle _handle;
    private readonly bool _linkable;
    private readonly DirectWriter? _writer;
    private readonly object _gate = new();
    private readonly Dictionary<(MappedFile File, long Offset, long Length), long> _precopied = new();
    private long _length;
    private bool _named;

    /// <param name="folder">Where the file lives: for <paramref name="mayBecomeOutput"/>, the output's folder (a name can only be given within one file system).</param>
    /// <param name="mayBecomeOutput">
    /// The file may become a saved model's data file: its writes go to the disk as they happen (direct, or started
    /// early). Scratch that is only read back (carried activations) stays in the page cache, which may never need to
    /// write it.
    /// </param>
    public SpillFile(string folder, bool mayBecomeOutput = false)
    {
        var unnamed = UnnamedFile.TryCreate(folder);
        _linkable = unnamed is not null && mayBecomeOutput;
        _handle = unnamed ?? CreateThenUnlink(folder);
        if (_linkable && UnnamedFile.TryOpenDirect(_handle) is { } direct)
            _writer = new DirectWriter(direct, _handle);
    }

    /// <summary>The open file with every write done (for kernel copies out of it when the model is saved).</summary>
    internal SafeFileHandle WrittenHandle()
    {
        _writer?.WaitForWrites();
        return _handle;
    }

    /// <summary>True when tensors go to the disk around the page cache on a writer thread (and <see cref="TryPrecopy"/> can queue copies).</summary>
    internal bool WritesDirect => _writer is not null;

    /// <summary>Bytes written so far, alignment padding included.</summary>
    public long Length => _length;

    /// <summary>True when <see cref="TryBecome"/> can give this file a name (Linux, a file system with O_TMPFILE), until it has.</summary>
    public bool CanBecomeNamed => _linkable && !_named;

    /// <summary>
    /// Writes the tensor's bytes (behind the caller where writes are direct: the tensor's own byte array is queued, not
    /// copied, as a tensor's bytes never change) and returns a tensor that reads them back from this file on demand.
    /// </summary>
    public Tensor Write(Tensor tensor)
    {
        long offset;
        int length;
        lock (_gate)
        {
            if (_named)
                throw new InvalidOperationException("the spill file is now a saved model's data file; nothing more may be written to it");
            offset = AlignUp(_length);
            if (_writer is not null && tensor.OwnedBytes is { Length: > 0 } owned)
            {
                _writer.Enqueue(offset, owned);
                length = owned.Length;
            }
            else
            {
                var bytes = tensor.RawBytes;
                RandomAccess.Write(_handle, bytes, offset);
                length = bytes.Length;
                // Its pages may become the output's: start them towards the disk now rather than in the save's fsync.
                if (_linkable)
                    UnnamedFile.StartWriteback(_handle, offset, length);
            }
            _length = offset + length;
        }
        return Tensor.FromSpill(tensor.Name, tensor.DataType, tensor.Shape, this, offset, length);
    }

    /// <summary>
    /// Where writes are direct, queues a copy of another file's range to <paramref name="offset"/> (bytes the save
    /// appends, such as the input's unchanged weights) and returns true; false where the caller writes them itself.
    /// </summary>
    internal bool TryQueueCopy(long offset, SafeFileHandle source, long sourceOffset, long length)
    {
        if (_writer is null)
            return false;
        _writer.EnqueueCopy(offset, source, sourceOffset, length);
        return true;
    }

    /// <summary>
    /// Where writes are direct and the file may still become the output, reserves room for a tensor of the input that
    /// the save will keep as it is (<paramref name="length"/> bytes of <paramref name="file"/> from
    /// <paramref name="sourceOffset"/>) and copies it there in the background, behind every tensor passes write, so it
    /// reaches the disk while the last pass computes rather than in the save. The save then places that tensor there
    /// (<see cref="PrecopiedOffset"/>). Should the tensor be replaced after all, its copy is dead bytes and the save
    /// copies everything instead: correct, only slower. False where nothing was queued.
    /// </summary>
    internal bool TryPrecopy(MappedFile file, long sourceOffset, long length)
    {
        lock (_gate)
        {
            if (_writer is null || !CanBecomeNamed)
                return false;
            if (_precopied.ContainsKey((file, sourceOffset, length)))
                return true;
            long offset = AlignUp(_length);
            _writer.EnqueueBackgroundCopy(offset, file.ReadHandle, sourceOffset, length);
            _precopied[(file, sourceOffset, length)] = offset;
            _length = offset + length;
            return true;
        }
    }

    /// <summary>Where <see cref="TryPrecopy"/> put this range of the input, if it did.</summary>
    internal long? PrecopiedOffset(MappedFile file, long sourceOffset, long length)
    {
        lock (_gate)
            return _precopied.TryGetValue((file, sourceOffset, length), out long offset) ? offset : null;
    }

    /// <summary>
    /// Where the tensor's bytes are in this file: written here by a pass, or precopied from the input; null otherwise.
    /// </summary>
    internal long? OffsetOf(Tensor tensor) =>
        tensor.SpillLocation is { } at ? (at.File == this ? at.Offset : null)
        : tensor.MappedLocation is { } mapped ? PrecopiedOffset(mapped.File, mapped.Offset, tensor.ByteLength)
        : null;

    /// <summary>
    /// True when the bytes <paramref name="tensors"/> have in this file (<see cref="OffsetOf"/>; the others are passed
    /// over) tile it exactly: each at the first aligned offset after the one before, the last ending at
    /// <see cref="Length"/>. Only then is every byte live and the file fit to be a data file as it is.
    /// </summary>
    internal bool TiledExactlyBy(IEnumerable<Tensor> tensors)
    {
        var ranges = new List<(long Offset, long Length)>();
        foreach (var tensor in tensors)
            if (OffsetOf(tensor) is { } offset)
                ranges.Add((offset, tensor.ByteLength));
        ranges.Sort();
        long end = 0;
        foreach (var (offset, length) in ranges)
        {
            if (offset != AlignUp(end))
                return false;
            end = offset + length;
        }
        return ranges.Count > 0 && end == Length;
    }

    private static long AlignUp(long position) => (position + Alignment - 1) / Alignment * Alignment;

    /// <summary>Waits until every tensor is in the file; throws a failed write.</summary>
    public void WaitForWrites() => _writer?.WaitForWrites();

    /// <summary>
    /// Gives the file the name <paramref name="path"/> (which must not exist) after <paramref name="finish"/> has appended
    /// to it at <see cref="Length"/> and returned the new length; from then on nothing more can be written to it. False,
    /// with the file still nameless, where it cannot be named; the tensors read from it work either way.
    /// </summary>
    internal bool TryBecome(string path, Func<SafeFileHandle, long, long> finish)
    {
        WaitForWrites();
        lock (_gate)
        {
            if (!CanBecomeNamed)
                return false;
            _length = finish(_handle, _length);
            if (!UnnamedFile.TryLink(_handle, path))
                return false;
            _named = true;
            return true;
        }
    }

    internal byte[] Read(long offset, int length)
    {
        var buffer = new byte[length];
        Read(offset, buffer);
        return buffer;
    }

    internal void Read(long offset, Span<byte> destination)
    {
        if (_writer is not null && _writer.TryReadQueued(offset, destination))
            return;
        int done = 0;
        while (done < destination.Length)
        {
            int n = RandomAccess.Read(_handle, destination[done..], offset + done);
            if (n == 0)
                throw new IOException($"spill file ended at {offset + done} while reading {destination.Length} bytes at {offset}");
            done += n;
        }
    }

    public void Dispose()
    {
        _writer?.Dispose();
        _handle.Dispose();
    }

    private static SafeFileHandle CreateThenUnlink(string folder)
    {
        string path = Path.Combine(folder, $".onnxquant-spill-{Environment.ProcessId}-{Guid.NewGuid():N}.tmp");
        var handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None,
            OperatingSystem.IsWindows() ? FileOptions.DeleteOnClose : FileOptions.None);
        if (!OperatingSystem.IsWindows())
            File.Delete(path); // the open handle keeps the data; the name is gone
        return handle;
    }
}
