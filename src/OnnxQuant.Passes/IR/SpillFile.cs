using Microsoft.Win32.SafeHandles;

namespace OnnxQuant.IR;

/// <summary>
/// An anonymous scratch file for tensors a pass produces, so a pass over a multi-GB model holds one tensor in memory at a
/// time instead of every rewritten weight until the save. The file is unlinked as soon as it is created (on Linux), so
/// it never shows up as a leftover even if the process is killed.
/// </summary>
public sealed class SpillFile : IDisposable
{
    private readonly SafeFileHandle _handle;
    private long _length;
    private readonly object _gate = new();

    public SpillFile(string folder)
    {
        string path = Path.Combine(folder, $".onnxquant-spill-{Environment.ProcessId}-{Guid.NewGuid():N}.tmp");
        _handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None,
            OperatingSystem.IsWindows() ? FileOptions.DeleteOnClose : FileOptions.None);
        if (!OperatingSystem.IsWindows())
            File.Delete(path); // the open handle keeps the data; the name is gone
    }

    /// <summary>The open file (for kernel copies out of it when the model is saved).</summary>
    internal SafeFileHandle Handle => _handle;

    /// <summary>Bytes written so far.</summary>
    public long Length => _length;

    /// <summary>Writes the tensor's bytes and returns a tensor that reads them back from this file on demand.</summary>
    public Tensor Write(Tensor tensor)
    {
        long offset;
        var bytes = tensor.RawBytes;
        lock (_gate)
        {
            offset = _length;
            RandomAccess.Write(_handle, bytes, offset);
            _length += bytes.Length;
        }
        return Tensor.FromSpill(tensor.Name, tensor.DataType, tensor.Shape, this, offset, bytes.Length);
    }

    internal byte[] Read(long offset, int length)
    {
        var buffer = new byte[length];
        Read(offset, buffer);
        return buffer;
    }

    internal void Read(long offset, Span<byte> destination)
    {
        int done = 0;
        while (done < destination.Length)
        {
            int n = RandomAccess.Read(_handle, destination[done..], offset + done);
            if (n == 0)
                throw new IOException($"spill file ended at {offset + done} while reading {destination.Length} bytes at {offset}");
            done += n;
        }
    }

    public void Dispose() => _handle.Dispose();
}
