using OnnxQuant.Fuzz;
using SharpFuzz;

// onnxquant-fuzz TARGET            one harness under afl-fuzz (scripts/fuzz.sh starts it so)
// onnxquant-fuzz replay TARGET P.. each file (or every file in each folder) once; prints accepted/refused per file
// onnxquant-fuzz seeds FOLDER      writes the seed corpus (SeedCorpus)
if (args is ["seeds", var root])
{
    SeedCorpus.Write(root);
    return 0;
}

string usage = $"usage: onnxquant-fuzz TARGET | onnxquant-fuzz replay TARGET PATH...   (targets: {string.Join(", ", FuzzTargets.All.Keys)})";
if (args.Length == 0 || !FuzzTargets.All.ContainsKey(args[0] == "replay" && args.Length > 1 ? args[1] : args[0]))
{
    Console.Error.WriteLine(usage);
    return 2;
}

using var scratch = new Scratch();
if (args[0] == "replay")
{
    var files = args.Skip(2).SelectMany(p => Directory.Exists(p) ? Directory.GetFiles(p).Order().ToArray() : new[] { p });
    foreach (var file in files)
        Console.WriteLine(FuzzTargets.Run(args[1], File.ReadAllBytes(file), scratch) is { } refusal
            ? $"refused {file}: {refusal.Problem}"
            : $"accepted {file}");
    return 0;
}

string target = args[0];
Fuzzer.Run(stream =>
{
    using var buffer = new MemoryStream();
    stream.CopyTo(buffer);
    FuzzTargets.Run(target, buffer.ToArray(), scratch);
});
return 0;
