using System.Diagnostics;
using Google.Protobuf;
using Onnx;
using OnnxQuant.IO;
using OnnxQuant.IR;

// Usage: io-bench <model.onnx> <out-folder>     load + save an existing model
//        io-bench --synthetic-gb N <out-folder>  generate an N-GB model (external data), then load + save it
// Prints load time, save time and peak RSS (VmHWM) as a markdown row.
if (args.Length == 3 && args[0] == "--synthetic-gb")
{
    string folder = args[2];
    Directory.CreateDirectory(folder);
    string source = Synthetic.Write(folder, double.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture));
    Measure(source, Path.Combine(folder, "copy.onnx"));
}
else if (args.Length == 2)
{
    Directory.CreateDirectory(args[1]);
    Measure(args[0], Path.Combine(args[1], "copy.onnx"));
}
else
{
    Console.Error.WriteLine("usage: io-bench <model.onnx> <out-folder> | --synthetic-gb N <out-folder>");
    return 2;
}
return 0;

static void Measure(string source, string copy)
{
    long before = PeakRss.Read();
    var clock = Stopwatch.StartNew();
    using var model = ModelFile.Load(source);
    double load = clock.Elapsed.TotalSeconds;
    long afterLoad = PeakRss.Read();
    clock.Restart();
    ModelFile.Save(model, copy);
    double save = clock.Elapsed.TotalSeconds;
    long peak = PeakRss.Read();
    double gb = model.WeightBytes / 1e9;
    Console.WriteLine("| model | weights | load | save | peak RSS after load | peak RSS after save |");
    Console.WriteLine("| --- | ---: | ---: | ---: | ---: | ---: |");
    Console.WriteLine($"| {Path.GetFileName(source)} | {gb:F2} GB | {load:F2} s | {save:F2} s | {afterLoad / 1e6:F0} MB | {peak / 1e6:F0} MB |");
    Console.WriteLine($"(process RSS before loading: {before / 1e6:F0} MB)");
}

static class PeakRss
{
    /// <summary>VmHWM of /proc/self/status: the process's peak resident set, in bytes.</summary>
    public static long Read()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        return 0;
    }
}

static class Synthetic
{
    /// <summary>A chain of [4096, 4096] fp32 MatMul weights in one external data file, written in 1 MiB chunks.</summary>
    public static string Write(string folder, double gigabytes)
    {
        const int side = 4096;
        long tensorBytes = (long)side * side * 4;
        int count = (int)Math.Ceiling(gigabytes * 1e9 / tensorBytes);
        var graph = new GraphProto { Name = "synthetic" };
        graph.Input.Add(Value("X"));
        string previous = "X";
        var chunk = new byte[1 << 20];
        using (var data = new FileStream(Path.Combine(folder, "synthetic.bin"), FileMode.Create))
        {
            for (int t = 0; t < count; t++)
            {
                for (long done = 0; done < tensorBytes; done += chunk.Length)
                {
                    chunk.AsSpan().Fill((byte)(t + done / chunk.Length));
                    data.Write(chunk);
                }
                var w = new TensorProto { Name = $"W{t}", DataType = (int)TensorProto.Types.DataType.Float, DataLocation = TensorProto.Types.DataLocation.External };
                w.Dims.Add(side);
                w.Dims.Add(side);
                w.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = "synthetic.bin" });
                w.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = (t * tensorBytes).ToString() });
                w.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = tensorBytes.ToString() });
                graph.Initializer.Add(w);
                graph.Node.Add(Nodes.Create("MatMul", new[] { previous, w.Name }, new[] { $"Y{t}" }, $"mm{t}"));
                previous = $"Y{t}";
            }
        }
        graph.Output.Add(Value(previous));
        var model = new ModelProto { IrVersion = 8, Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 17 });
        string path = Path.Combine(folder, "synthetic.onnx");
        using (var s = File.Create(path)) model.WriteTo(s);
        return path;
    }

    private static ValueInfoProto Value(string name) => new()
    {
        Name = name,
        Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float } },
    };
}
