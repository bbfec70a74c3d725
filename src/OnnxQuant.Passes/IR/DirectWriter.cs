using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace OnnxQuant.IR;

/// <summary>
/// Writes a spill file's tensors to the disk on a thread of its own, around the page cache (<c>O_DIRECT</c>, through a
/// 4 KiB-aligned bounce buffer): a buffered write costs the writing thread a copy into fresh cache pages, which in
/// this VM cost more than the disk (660 MB: 0.6-1.8 s of CPU buffered, plus 0.25 s of fsync, against 0.4 s of
/// waiting for the disk and no CPU direct), and the save's final fsync then finds nothing to wait for. The save also
/// queues ranges of the input's data file (its unchanged weights) to be copied the same way; copies queued as
/// background work (<see cref="EnqueueBackgroundCopy"/>) are done a chunk at a time whenever no tensor waits. Until a
/// tensor is written its bytes are read from the queued array; a failed write is thrown by the next call.
/// </summary>
internal sealed unsafe class DirectWriter : IDisposable
{
    private const int Block = 4096;

    /// <summary>The bounce buffer: what one direct write moves.</summary>
    private const int ChunkBytes = 8 << 20;

    /// <summary>At most this many bytes wait in the queue; past it <see cref="Enqueue"/> waits (one tensor may always wait).</summary>
    private const long MaxQueuedBytes = 64L << 20;

    private readonly SafeFileHandle _direct;
    private readonly SafeFileHandle _buffered;
    private readonly object _gate = new();
    // A tensor's bytes (Bytes), or a range of another file to copy (Source, SourceOffset, Length).
    private readonly record struct Job(long Offset, byte[]? Bytes, SafeFileHandle? Source, long SourceOffset, long Length);

    private readonly Queue<Job> _queue = new();
    private readonly Queue<Job> _background = new();
    private long _backgroundDone; // bytes of the first background copy already in the file
    private int _waiting; // callers in WaitForWrites: the rest of the background copies goes at full speed
    private readonly Thread _thread;
    private readonly byte* _chunk;
    private byte* _second; // the other half of a file range's double buffer, made on first use
    private long _queuedBytes;
    private bool _directRefused;
    private ExceptionDispatchInfo? _failure;
    private bool _closing;

    /// <param name="direct">An <c>O_DIRECT</c> handle on the file (<see cref="UnnamedFile.TryOpenDirect"/>); this writer owns it.</param>
    /// <param name="buffered">The file's ordinary handle: the tail of a tensor that does not fill a block is written through it.</param>
    public DirectWriter(SafeFileHandle direct, SafeFileHandle buffered)
    {
        _direct = direct;
        _buffered = buffered;
        _chunk = (byte*)NativeMemory.AlignedAlloc(ChunkBytes, Block);
        _thread = new Thread(WriteQueued) { IsBackground = true, Name = "spill writer" };
        _thread.Start();
    }

    /// <summary>Queues <paramref name="bytes"/> for <paramref name="offset"/> (a multiple of 4096). The array must not change afterwards.</summary>
    public void Enqueue(long offset, byte[] bytes)
    {
        lock (_gate)
        {
            ThrowIfFailed();
            while (_queuedBytes > 0 && _queuedBytes + bytes.Length > MaxQueuedBytes && _failure is null)
                Monitor.Wait(_gate);
            ThrowIfFailed();
            _queue.Enqueue(new Job(offset, bytes, null, 0, bytes.Length));
            _queuedBytes += bytes.Length;
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>
    /// Queues a copy of <paramref name="length"/> bytes of <paramref name="source"/> from <paramref name="sourceOffset"/>
    /// to <paramref name="offset"/> (a multiple of 4096): read through the page cache a chunk at a time while the chunk
    /// before goes to the disk directly, so the bytes never occupy fresh cache pages of this file. The handle must stay
    /// open until <see cref="WaitForWrites"/> returns.
    /// </summary>
    public void EnqueueCopy(long offset, SafeFileHandle source, long sourceOffset, long length)
    {
        lock (_gate)
        {
            ThrowIfFailed();
            _queue.Enqueue(new Job(offset, null, source, sourceOffset, length));
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>
    /// Queues a copy as <see cref="EnqueueCopy"/> does, but behind every tensor, then and later: it is done one chunk at
    /// a time while no tensor waits (so a pass's writes never wait behind it), and at full speed once a caller waits
    /// in <see cref="WaitForWrites"/>. Dispose abandons what is left of it.
    /// </summary>
    public void EnqueueBackgroundCopy(long offset, SafeFileHandle source, long sourceOffset, long length)
    {
        lock (_gate)
        {
            ThrowIfFailed();
            _background.Enqueue(new Job(offset, null, source, sourceOffset, length));
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>Copies a range from a tensor still queued; false when the range is already in the file.</summary>
    public bool TryReadQueued(long offset, Span<byte> destination)
    {
        lock (_gate)
        {
            ThrowIfFailed();
            foreach (var job in _queue)
                if (job.Bytes is { } bytes && offset >= job.Offset && offset + destination.Length <= job.Offset + bytes.Length)
                {
                    bytes.AsSpan((int)(offset - job.Offset), destination.Length).CopyTo(destination);
                    return true;
                }
            return false;
        }
    }

    /// <summary>Waits until every queued tensor is in the file; throws the first write failure.</summary>
    public void WaitForWrites()
    {
        lock (_gate)
        {
            _waiting++;
            try
            {
                while ((_queue.Count > 0 || _background.Count > 0) && _failure is null)
                    Monitor.Wait(_gate);
            }
            finally
            {
                _waiting--;
            }
            ThrowIfFailed();
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _closing = true;
            Monitor.PulseAll(_gate);
        }
        _thread.Join();
        _direct.Dispose();
        NativeMemory.AlignedFree(_chunk);
        if (_second is not null)
            NativeMemory.AlignedFree(_second);
    }

    private void WriteQueued()
    {
        while (true)
        {
            Job job;
            bool background, fast = false;
            long from = 0, count = 0;
            lock (_gate)
            {
                while (_queue.Count == 0 && _background.Count == 0 && !_closing)
                    Monitor.Wait(_gate);
                if (_failure is not null)
                    return;
                background = _queue.Count == 0;
                if (background && (_closing || _background.Count == 0))
                    return;
                job = background ? _background.Peek() : _queue.Peek();
                if (background)
                {
                    from = _backgroundDone;
                    fast = _waiting > 0;
                    count = fast ? job.Length - from : Math.Min(ChunkBytes, job.Length - from);
                }
            }
            try
            {
                if (background)
                    CopyBackground(job.Offset + from, job.Source!, job.SourceOffset + from, count, fast);
                else if (job.Bytes is { } bytes)
                    Write(job.Offset, bytes);
                else
                    Copy(job.Offset, job.Source!, job.SourceOffset, job.Length);
            }
            catch (Exception e)
            {
                lock (_gate)
                {
                    _failure = ExceptionDispatchInfo.Capture(e);
                    Monitor.PulseAll(_gate);
                }
                return;
            }
            lock (_gate)
            {
                if (background)
                {
                    _backgroundDone += count;
                    if (_backgroundDone == job.Length)
                    {
                        _background.Dequeue();
                        _backgroundDone = 0;
                    }
                }
                else
                {
                    _queue.Dequeue();
                    _queuedBytes -= job.Bytes?.Length ?? 0;
                }
                Monitor.PulseAll(_gate);
            }
        }
    }

    // One step of a background copy. While passes run, a chunk read and written on this thread (the double buffer's
    // second write would go to the thread pool, which a pass's workers hold); once the save waits, the rest at full speed.
    private void CopyBackground(long offset, SafeFileHandle source, long sourceOffset, long length, bool fast)
    {
        if (fast)
        {
            Copy(offset, source, sourceOffset, length);
            return;
        }
        var chunk = new Span<byte>(_chunk, (int)length);
        ReadFully(source, chunk, sourceOffset);
        int direct = _directRefused ? 0 : (int)(length / Block * Block);
        if (direct > 0)
        {
            try
            {
                RandomAccess.Write(_direct, chunk[..direct], offset);
            }
            catch (IOException)
            {
                _directRefused = true;
                direct = 0;
            }
        }
        if (direct < length)
            RandomAccess.Write(_buffered, chunk[direct..], offset + direct);
    }

    // Whole blocks go direct through the bounce buffer; the last partial block goes through the page cache, so the
    // file never holds padding past the tensor's end. A file system that opens O_DIRECT but refuses the write gets
    // this and every later write through the page cache (a full disk then fails there too).
    private void Write(long offset, byte[] bytes)
    {
        int whole = _directRefused ? 0 : bytes.Length / Block * Block;
        var chunk = new Span<byte>(_chunk, ChunkBytes);
        for (int done = 0; done < whole; done += ChunkBytes)
        {
            int n = Math.Min(ChunkBytes, whole - done);
            bytes.AsSpan(done, n).CopyTo(chunk);
            try
            {
                RandomAccess.Write(_direct, chunk[..n], offset + done);
            }
            catch (IOException)
            {
                _directRefused = true;
                whole = done;
                break;
            }
        }
        if (whole < bytes.Length)
            RandomAccess.Write(_buffered, bytes.AsSpan(whole), offset + whole);
    }

    // Double-buffered: chunk i is read while chunk i - 1 is written (on the thread pool), the last partial block
    // through the page cache. A refused direct write sends the whole range through the page cache. No write is left
    // running on a buffer when this returns or throws (Dispose frees them).
    private void Copy(long offset, SafeFileHandle source, long sourceOffset, long length)
    {
        long whole = _directRefused ? 0 : length / Block * Block;
        if (whole > 0 && _second is null)
            _second = (byte*)NativeMemory.AlignedAlloc(ChunkBytes, Block);
        Task? writing = null;
        try
        {
            for (long done = 0; done < whole; done += ChunkBytes)
            {
                int n = (int)Math.Min(ChunkBytes, whole - done);
                nint buffer = (nint)((done / ChunkBytes) % 2 == 0 ? _chunk : _second);
                ReadFully(source, new Span<byte>((byte*)buffer, n), sourceOffset + done);
                writing?.GetAwaiter().GetResult();
                long at = offset + done;
                writing = Task.Run(() => RandomAccess.Write(_direct, new ReadOnlySpan<byte>((byte*)buffer, n), at));
            }
            writing?.GetAwaiter().GetResult();
        }
        catch (IOException) when (writing is { IsFaulted: true })
        {
            _directRefused = true;
            whole = 0;
        }
        finally
        {
            if (writing is { IsCompleted: false })
                try { writing.Wait(); } catch (AggregateException) { } // the exception in flight is the one reported
        }
        var chunk = new Span<byte>(_chunk, ChunkBytes);
        for (long done = whole; done < length; done += ChunkBytes)
        {
            int n = (int)Math.Min(ChunkBytes, length - done);
            ReadFully(source, chunk[..n], sourceOffset + done);
            RandomAccess.Write(_buffered, chunk[..n], offset + done);
        }
    }

    private static void ReadFully(SafeFileHandle source, Span<byte> destination, long offset)
    {
        for (int done = 0; done < destination.Length;)
        {
            int n = RandomAccess.Read(source, destination[done..], offset + done);
            if (n == 0)
                throw new IOException($"the source file ended at {offset + done} while copying {destination.Length} bytes from {offset}");
            done += n;
        }
    }

    private void ThrowIfFailed() => _failure?.Throw();
}
