using Microsoft.Win32.SafeHandles;

namespace OnnxQuant.IR;

/// <summary>
/// Writes a new file front to back at explicit offsets (buffered small writes, direct large ones), so that between
/// two writes a range of another file can be copied in by the kernel (<see cref="FileRangeCopy"/>) without a stream's
/// idea of the position going stale.
/// </summary>
public sealed class PositionalFileWriter : IDisposable
{
    private readonly SafeFileHandle _handle;
    private readonly bool _ownsHandle;
    private readonly byte[] _buffer = new byte[1 << 20];
    private int _buffered;
    private long _writebackStarted;

    /// <summary>Creates <paramref name="path"/>; it must not exist.</summary>
    public PositionalFileWriter(string path)
    {
        _handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.Write, FileShare.None);
        _ownsHandle = true;
    }

    /// <summary>Appends to an open file from <paramref name="position"/> on; the caller keeps the handle.</summary>
    internal PositionalFileWriter(SafeFileHandle handle, long position)
    {
        _handle = handle;
        Position = _writebackStarted = position;
    }

    /// <summary>Bytes written so far (buffered ones included).</summary>
    public long Position { get; private set; }

    public void Write(ReadOnlySpan<byte> data)
    {
        if (data.Length >= _buffer.Length)
        {
            Flush();
            RandomAccess.Write(_handle, data, Position);
            Position += data.Length;
            return;
        }
        if (_buffered + data.Length > _buffer.Length)
            Flush();
        data.CopyTo(_buffer.AsSpan(_buffered));
        _buffered += data.Length;
        Position += data.Length;
    }

    /// <summary>Moves past <paramref name="length"/> bytes someone else writes (a queued direct copy); returns where they start.</summary>
    internal long Skip(long length)
    {
        Flush();
        long start = Position;
        Position += length;
        _writebackStarted = Position;
        return start;
    }

    /// <summary>Zero bytes up to the next multiple of <paramref name="alignment"/>; returns the new position.</summary>
    public long Align(int alignment)
    {
        long pad = (alignment - Position % alignment) % alignment;
        if (pad > 0)
            Write(new byte[pad]);
        return Position;
    }

    /// <summary>
    /// Appends <paramref name="length"/> bytes of <paramref name="source"/> from <paramref name="offset"/> by a kernel
    /// copy; returns how many it could copy (the caller writes the rest itself).
    /// </summary>
    public long CopyFrom(SafeFileHandle source, long offset, long length)
    {
        Flush();
        long copied = FileRangeCopy.Copy(source, offset, _handle, Position, length);
        Position += copied;
        return copied;
    }

    /// <summary>
    /// Writes the buffer out and starts the disk writes of everything written since the last call without waiting for
    /// them, so the final <see cref="FlushToDisk"/> finds most pages already written.
    /// </summary>
    public void StartWriteback()
    {
        Flush();
        UnnamedFile.StartWriteback(_handle, _writebackStarted, Position - _writebackStarted);
        _writebackStarted = Position;
    }

    /// <summary>Writes the buffer out and waits until the file's data is on the disk.</summary>
    public void FlushToDisk()
    {
        Flush();
        RandomAccess.FlushToDisk(_handle);
    }

    private void Flush()
    {
        if (_buffered == 0)
            return;
        RandomAccess.Write(_handle, _buffer.AsSpan(0, _buffered), Position - _buffered);
        _buffered = 0;
    }

    public void Dispose()
    {
        if (_ownsHandle)
            _handle.Dispose();
    }
}
