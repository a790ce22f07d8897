/* The segmenter's Viterbi pass over ring-shaped heart cycles (beats.best_cycle), compiled.

   The same additions, comparisons and tie rule as beats.py's numpy loop, in the same order, so the path and
   the score are identical bit for bit (tests/test_dsp.py holds them to it). numpy pays ~4 calls a frame
   (~5 ms for 30 s); this is one pass (best_cycle whole ~0.4 ms). Built by pip when a C compiler is there;
   without one the numpy loop runs (pyproject.toml marks this extension optional).

   forward(emit, sources, leave, back, score):
     emit    float64 (n, P)   log-likelihood of every frame in every phase
     sources intp    (3, P)   the phase each phase is reached from by staying, one step, skipping one
     leave   float64 (3, P)   the log cost of that move
     back    int8    (n, P)   out: which of the three moves was best (first best on a tie)
     score   float64 (P)      in: emit[0]; out: the best path's log-likelihood ending in each phase

   backtrack(back, sources, path):
     path    intp    (n)      in: path[n-1], the phase the best path ends in; out: the phase of every frame */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static PyObject *forward(PyObject *self, PyObject *args) {
    Py_buffer emit, sources, leave, back, score;
    if (!PyArg_ParseTuple(args, "y*y*y*w*w*", &emit, &sources, &leave, &back, &score))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t P = score.len / (Py_ssize_t)sizeof(double);
    Py_ssize_t n = P ? emit.len / (P * (Py_ssize_t)sizeof(double)) : 0;
    if (P == 0 || emit.len != n * P * (Py_ssize_t)sizeof(double) || sources.len != 3 * P * (Py_ssize_t)sizeof(Py_ssize_t)
        || leave.len != 3 * P * (Py_ssize_t)sizeof(double) || back.len != n * P) {
        PyErr_SetString(PyExc_ValueError, "forward: arrays of inconsistent sizes");
        goto done;
    }
    const double *e = emit.buf, *lv = leave.buf;
    const Py_ssize_t *src = sources.buf;
    int8_t *bk = back.buf;
    double *s = score.buf;
    double *next = malloc(P * sizeof(double));
    if (!next) {
        PyErr_NoMemory();
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t t = 1; t < n; t++) {
        const double *et = e + t * P;
        int8_t *bt = bk + t * P;
        for (Py_ssize_t j = 0; j < P; j++) {
            double best = s[src[j]] + lv[j];
            int8_t which = 0;
            for (int k = 1; k < 3; k++) {
                double o = s[src[k * P + j]] + lv[k * P + j];
                if (o > best) {
                    best = o;
                    which = (int8_t)k;
                }
            }
            next[j] = best + et[j];
            bt[j] = which;
        }
        memcpy(s, next, P * sizeof(double));
    }
    Py_END_ALLOW_THREADS
    free(next);
    Py_INCREF(Py_None);
    result = Py_None;
done:
    PyBuffer_Release(&emit);
    PyBuffer_Release(&sources);
    PyBuffer_Release(&leave);
    PyBuffer_Release(&back);
    PyBuffer_Release(&score);
    return result;
}

static PyObject *backtrack(PyObject *self, PyObject *args) {
    Py_buffer back, sources, path;
    if (!PyArg_ParseTuple(args, "y*y*w*", &back, &sources, &path))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t n = path.len / (Py_ssize_t)sizeof(Py_ssize_t);
    Py_ssize_t P = n ? back.len / n : 0;
    if (n == 0 || P == 0 || back.len != n * P || sources.len != 3 * P * (Py_ssize_t)sizeof(Py_ssize_t)) {
        PyErr_SetString(PyExc_ValueError, "backtrack: arrays of inconsistent sizes");
        goto done;
    }
    const int8_t *bk = back.buf;
    const Py_ssize_t *src = sources.buf;
    Py_ssize_t *out = path.buf;
    for (Py_ssize_t t = n - 1; t > 0; t--) {
        Py_ssize_t j = out[t];
        if (j < 0 || j >= P) {
            PyErr_SetString(PyExc_ValueError, "backtrack: a phase out of range");
            goto done;
        }
        out[t - 1] = src[bk[t * P + j] * P + j];
    }
    Py_INCREF(Py_None);
    result = Py_None;
done:
    PyBuffer_Release(&back);
    PyBuffer_Release(&sources);
    PyBuffer_Release(&path);
    return result;
}

static PyMethodDef methods[] = {
    {"forward", forward, METH_VARARGS, "The Viterbi forward pass over the rings (see the file's header)."},
    {"backtrack", backtrack, METH_VARARGS, "The best path back from its last phase (see the file's header)."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_viterbi", NULL, -1, methods};

PyMODINIT_FUNC PyInit__viterbi(void) { return PyModule_Create(&module); }
